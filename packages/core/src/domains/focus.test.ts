import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeDomainLaws } from '../testing/index.js';
import { domainStream, rejectionOf } from '../../test/domainStream.js';
import { DomainRejection, LockstepError } from '../errors.js';
import type { Random } from '../random.js';
import { DEFAULT_MAX_FOCUSED, evictionOrder, focusDomain as domain, nextEviction, type FocusState } from './focus.js';

const createStream = (now?: number) => domainStream(domain, 'focus/proj_1', now);

function checkInvariants(state: FocusState): void {
  expect(state.focused.length).toBeLessThanOrEqual(state.maxFocused);
  expect(new Set(state.focused).size).toBe(state.focused.length);
  expect(Object.keys(state.lastActive).sort()).toEqual([...state.focused].sort());
  expect(state.maxFocused).toBeGreaterThanOrEqual(1);
}

/** Focuses s1..sN one millisecond apart. */
function focusAll(stream: ReturnType<typeof createStream>, ...ids: string[]): void {
  for (const sessionId of ids) {
    stream.runBrief('focus.set', { sessionId });
    stream.advance(1);
  }
}

describe('focus domain', () => {
  it('starts empty with room for DEFAULT_MAX_FOCUSED (4) sessions', () => {
    expect(domain.initialState()).toEqual({ maxFocused: 4, focused: [], lastActive: {} });
    expect(DEFAULT_MAX_FOCUSED).toBe(4);
  });

  it('evicts the least recently active session on a 5th focus, before gaining (seed 001)', () => {
    const stream = createStream();
    focusAll(stream, 's1', 's2', 's3', 's4');
    expect(nextEviction(stream.state)).toBe('s1');
    expect(stream.runBrief('focus.set', { sessionId: 's5' })).toEqual([
      { type: 'focus.lost', data: { sessionId: 's1', reason: 'evicted', bySessionId: 's5' } },
      { type: 'focus.gained', data: { sessionId: 's5', at: 1_004 } },
    ]);
    expect(stream.state.focused).toEqual(['s2', 's3', 's4', 's5']);
  });

  it('lets activity change which session is evicted', () => {
    const stream = createStream();
    focusAll(stream, 's1', 's2', 's3', 's4');
    stream.runBrief('focus.touch', { sessionId: 's1' });
    stream.advance(1);
    expect(nextEviction(stream.state)).toBe('s2');
    expect(stream.runBrief('focus.set', { sessionId: 's5' })[0]).toEqual({
      type: 'focus.lost',
      data: { sessionId: 's2', reason: 'evicted', bySessionId: 's5' },
    });
    expect(stream.state.focused).toEqual(['s1', 's3', 's4', 's5']);
  });

  it('breaks activity ties by focus order: the earliest focused goes first', () => {
    const stream = createStream();
    for (const sessionId of ['s3', 's1', 's2', 's4']) stream.runBrief('focus.set', { sessionId }); // all at the same time
    expect(evictionOrder(stream.state)).toEqual(['s3', 's1', 's2', 's4']);
    expect(stream.runBrief('focus.set', { sessionId: 's5' })[0]?.data).toMatchObject({ sessionId: 's3' });
  });

  it('treats focusing a focused session as a touch, and a touch at the same time as nothing', () => {
    const stream = createStream();
    stream.runBrief('focus.set', { sessionId: 's1' });
    expect(stream.runBrief('focus.set', { sessionId: 's1' })).toEqual([]);
    stream.advance(5);
    expect(stream.runBrief('focus.set', { sessionId: 's1' })).toEqual([{ type: 'focus.touched', data: { sessionId: 's1', at: 1_005 } }]);
    expect(stream.state.lastActive).toEqual({ s1: 1_005 });
  });

  it('ignores touches, blurs and closes of unfocused sessions (idempotent, never rejected)', () => {
    const stream = createStream();
    expect(stream.runBrief('focus.touch', { sessionId: 's1' })).toEqual([]);
    expect(stream.runBrief('focus.blur', { sessionId: 's1' })).toEqual([]);
    expect(stream.runBrief('focus.close', { sessionId: 's1' })).toEqual([]);
    expect(stream.log).toEqual([]);
  });

  it('blurs and closes focused sessions with their reasons', () => {
    const stream = createStream();
    focusAll(stream, 's1', 's2');
    expect(stream.runBrief('focus.blur', { sessionId: 's1' })).toEqual([{ type: 'focus.lost', data: { sessionId: 's1', reason: 'blurred' } }]);
    expect(stream.runBrief('focus.close', { sessionId: 's2' })).toEqual([{ type: 'focus.lost', data: { sessionId: 's2', reason: 'closed' } }]);
    expect(stream.state).toEqual({ maxFocused: 4, focused: [], lastActive: {} });
  });

  it('replaces the whole set atomically with setMany (grid layout)', () => {
    const stream = createStream();
    focusAll(stream, 's1', 's2', 's3');
    expect(stream.runBrief('focus.setMany', { sessionIds: ['s3', 's4', 's2', 's5'] })).toEqual([
      { type: 'focus.lost', data: { sessionId: 's1', reason: 'replaced' } },
      { type: 'focus.touched', data: { sessionId: 's3', at: 1_003 } },
      { type: 'focus.gained', data: { sessionId: 's4', at: 1_003 } },
      { type: 'focus.touched', data: { sessionId: 's2', at: 1_003 } },
      { type: 'focus.gained', data: { sessionId: 's5', at: 1_003 } },
    ]);
    // Kept sessions keep their place; new ones follow in the order given.
    expect(stream.state.focused).toEqual(['s2', 's3', 's4', 's5']);
    expect(stream.runBrief('focus.setMany', { sessionIds: [] })).toHaveLength(4);
    expect(stream.state.focused).toEqual([]);
  });

  it('rejects setMany with too many sessions (focus.tooMany) or duplicates (focus.duplicateSession)', () => {
    const stream = createStream();
    focusAll(stream, 's1');
    const tooMany = rejectionOf(() => stream.runBrief('focus.setMany', { sessionIds: ['a', 'b', 'c', 'd', 'e'] }));
    expect(tooMany.reason).toBe('focus.tooMany');
    expect(tooMany.details).toEqual({ maxFocused: 4, requested: 5 });
    const duplicate = rejectionOf(() => stream.runBrief('focus.setMany', { sessionIds: ['a', 'b', 'a'] }));
    expect(duplicate.reason).toBe('focus.duplicateSession');
    expect(duplicate.details).toEqual({ duplicates: ['a'] });
    expect(stream.state.focused).toEqual(['s1']);
  });

  it('evicts the least recently active sessions when configure shrinks the limit, then records the limit', () => {
    const stream = createStream();
    focusAll(stream, 's1', 's2', 's3', 's4');
    stream.runBrief('focus.touch', { sessionId: 's1' });
    expect(stream.runBrief('focus.configure', { maxFocused: 2 })).toEqual([
      { type: 'focus.lost', data: { sessionId: 's2', reason: 'reconfigured' } },
      { type: 'focus.lost', data: { sessionId: 's3', reason: 'reconfigured' } },
      { type: 'focus.configured', data: { maxFocused: 2 } },
    ]);
    expect(stream.state.focused).toEqual(['s1', 's4']);
    expect(stream.runBrief('focus.configure', { maxFocused: 2 })).toEqual([]);
    expect(stream.runBrief('focus.configure', { maxFocused: 6 })).toEqual([{ type: 'focus.configured', data: { maxFocused: 6 } }]);
    focusAll(stream, 'a', 'b', 'c', 'd');
    expect(stream.state.focused).toHaveLength(6);
  });

  it.each([
    ['focus.set', { sessionId: '' }],
    ['focus.set', { sessionId: 'has space' }],
    ['focus.set', { sessionId: '__proto__' }],
    ['focus.set', { sessionId: 's1', extra: true }],
    ['focus.setMany', { sessionIds: 's1' }],
    ['focus.setMany', { sessionIds: Array.from({ length: 65 }, (_, i) => `s${i}`) }],
    ['focus.configure', { maxFocused: 0 }],
    ['focus.configure', { maxFocused: 65 }],
    ['focus.configure', { maxFocused: 2.5 }],
  ])('refuses %s %j as invalid params', (type, payload) => {
    expect(() => createStream().runBrief(type, payload)).toThrow(expect.objectContaining({ code: 'INVALID_PARAMS' }));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: random sequences against a plain reference model.
// ---------------------------------------------------------------------------------------------

const sessionArb = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('s1', 's2', 's3', 's4', 's5', 's6', 's7') },
  { weight: 1, arbitrary: fc.constantFrom('', 'bad id', '__proto__') },
);

const stepArb = fc.record({
  advance: fc.constantFrom(0, 0, 1, 2, 5),
  command: fc.oneof(
    { weight: 5, arbitrary: fc.record({ type: fc.constant('focus.set'), payload: fc.record({ sessionId: sessionArb }) }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('focus.setMany'), payload: fc.record({ sessionIds: fc.array(sessionArb, { maxLength: 6 }) }) }) },
    { weight: 2, arbitrary: fc.record({ type: fc.constant('focus.blur'), payload: fc.record({ sessionId: sessionArb }) }) },
    { weight: 3, arbitrary: fc.record({ type: fc.constant('focus.touch'), payload: fc.record({ sessionId: sessionArb }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('focus.close'), payload: fc.record({ sessionId: sessionArb }) }) },
    { weight: 1, arbitrary: fc.record({ type: fc.constant('focus.configure'), payload: fc.record({ maxFocused: fc.integer({ min: -1, max: 8 }) }) }) },
  ),
});

/** The rules, written as plainly as possible: a list of {id, last} in focus order. */
class FocusModel {
  max = 4;
  list: { id: string; last: number }[] = [];
  lru(): string {
    let pick = this.list[0]!;
    for (const entry of this.list) if (entry.last < pick.last) pick = entry;
    return pick.id;
  }
  drop(id: string) {
    this.list = this.list.filter((entry) => entry.id !== id);
  }
  apply(type: string, payload: any, now: number): void {
    const found = (id: string) => this.list.find((entry) => entry.id === id);
    switch (type) {
      case 'focus.set': {
        const entry = found(payload.sessionId);
        if (entry) entry.last = now;
        else {
          if (this.list.length >= this.max) this.drop(this.lru());
          this.list.push({ id: payload.sessionId, last: now });
        }
        break;
      }
      case 'focus.setMany':
        this.list = this.list.filter((entry) => payload.sessionIds.includes(entry.id));
        for (const id of payload.sessionIds) {
          const entry = found(id);
          if (entry) entry.last = now;
          else this.list.push({ id, last: now });
        }
        break;
      case 'focus.touch': {
        const entry = found(payload.sessionId);
        if (entry) entry.last = now;
        break;
      }
      case 'focus.blur':
      case 'focus.close':
        this.drop(payload.sessionId);
        break;
      case 'focus.configure':
        this.max = payload.maxFocused;
        while (this.list.length > this.max) this.drop(this.lru());
        break;
    }
  }
  toState(): FocusState {
    return { maxFocused: this.max, focused: this.list.map((entry) => entry.id), lastActive: Object.fromEntries(this.list.map((e) => [e.id, e.last])) };
  }
}

describe('focus properties', () => {
  it('never holds more than maxFocused after any event, and matches the reference model', () => {
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 80 }), (steps) => {
        const stream = createStream();
        const model = new FocusModel();
        let now = 1_000;
        for (const { advance, command } of steps) {
          stream.advance(advance);
          now += advance;
          const before = stream.state;
          const snapshot = JSON.stringify(before);
          try {
            stream.runBrief(command.type, command.payload);
          } catch (error) {
            const expected = error instanceof DomainRejection || (error instanceof LockstepError && error.code === 'INVALID_PARAMS');
            if (!expected) throw error;
            expect(stream.state).toBe(before);
            expect(JSON.stringify(stream.state)).toBe(snapshot);
            continue;
          }
          expect(JSON.stringify(before)).toBe(snapshot); // decide and evolve never mutate their input
          model.apply(command.type, command.payload, now);
          expect(stream.state).toEqual(model.toState());
        }
        // Every intermediate state of the log respects the invariants; replay gives the same state.
        let state = domain.initialState();
        for (const event of stream.log) {
          state = domain.evolve(state, event);
          checkInvariants(state);
        }
        expect(state).toEqual(stream.state);
        expect(JSON.parse(JSON.stringify(stream.state))).toEqual(stream.state);
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The laws every domain keeps (@lockstep/core/testing).
// ---------------------------------------------------------------------------------------------

const focusSession = (random: Random) =>
  random.chance(0.9) ? random.pick(['s1', 's2', 's3', 's4', 's5', 's6', 's7']) : random.pick(['', 'bad id', '__proto__']);

describeDomainLaws(domain, {
  runner: { describe, it },
  commands: {
    'focus.set': (random) => ({ sessionId: focusSession(random) }),
    'focus.setMany': (random) => ({ sessionIds: Array.from({ length: random.int(7) }, () => focusSession(random)) }),
    'focus.blur': (random, state) => ({ sessionId: state.focused.length > 0 && random.chance(0.7) ? random.pick(state.focused) : focusSession(random) }),
    'focus.touch': (random) => ({ sessionId: focusSession(random) }),
    'focus.close': (random) => ({ sessionId: focusSession(random) }),
    'focus.configure': (random) => ({ maxFocused: random.int(10) - 1 }),
  },
});

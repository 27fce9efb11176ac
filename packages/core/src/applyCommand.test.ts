import fc from 'fast-check';
import { isDraft } from 'immer';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { applyCommand, createCommandBatch } from './applyCommand.js';
import { defineDomain, type AnyDomain } from './domain.js';
import { DomainRejection, LockstepError } from './errors.js';
import { tasksDomain } from './domains/tasks.js';

const STREAM = 'tasks/batch';

type Step = { type: string; payload: unknown };
type Outcome = { events: unknown[] } | { refused: string };

function refusal(error: unknown): string {
  if (error instanceof DomainRejection) return `rejection:${error.reason}`;
  if (error instanceof LockstepError) return `error:${error.code}`;
  throw error;
}

/** The reference: one applyCommand after another, each on the state the previous one returned. */
function oneByOne(domain: AnyDomain, state: unknown, steps: readonly Step[]): { state: unknown; outcomes: Outcome[] } {
  let version = 0;
  const outcomes: Outcome[] = [];
  for (const [i, step] of steps.entries()) {
    try {
      const applied = applyCommand(domain, state, { id: `c${i}`, ...step }, { now: 1_000 + i, version, stream: STREAM });
      state = applied.state;
      version = applied.version;
      outcomes.push({ events: applied.events });
    } catch (error) {
      outcomes.push({ refused: refusal(error) });
    }
  }
  return { state, outcomes };
}

function batched(domain: AnyDomain, state: unknown, steps: readonly Step[]): { state: unknown; outcomes: Outcome[] } {
  const batch = createCommandBatch(domain, state, STREAM);
  let version = 0;
  const outcomes: Outcome[] = [];
  for (const [i, step] of steps.entries()) {
    try {
      const events = batch.apply({ id: `c${i}`, ...step }, { now: 1_000 + i, version });
      version += events.length;
      outcomes.push({ events });
    } catch (error) {
      outcomes.push({ refused: refusal(error) });
    }
  }
  return { state: batch.finish(), outcomes };
}

const taskId = fc.constantFrom('t1', 't2', 't3', 'constructor');
const sessionId = fc.constantFrom('s1', 's2');
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ type: fc.constant('task.create'), payload: fc.record({ id: taskId, title: fc.constantFrom('a', ' ', 'b') }) }),
  fc.record({
    type: fc.constant('task.update'),
    payload: fc.record({ id: taskId, title: fc.constantFrom('a', 'c'), status: fc.constantFrom('pending', 'completed') }),
  }),
  fc.record({ type: fc.constant('task.delete'), payload: fc.record({ id: taskId }) }),
  fc.record({ type: fc.constant('session.create'), payload: fc.record({ id: sessionId }) }),
  fc.record({ type: fc.constant('session.delete'), payload: fc.record({ id: sessionId }) }),
  fc.record({ type: fc.constantFrom('session.addTask', 'session.removeTask'), payload: fc.record({ sessionId, taskId }) }),
);

describe('createCommandBatch', () => {
  it('gives the events, refusals and final state of one applyCommand after another, and leaves its input alone', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 12 }), fc.array(step, { maxLength: 40 }), (setup, steps) => {
        const start = oneByOne(tasksDomain, tasksDomain.initialState(), setup).state;
        const before = JSON.stringify(start);
        const expected = oneByOne(tasksDomain, start, steps);
        const actual = batched(tasksDomain, start, steps);
        expect(actual.outcomes).toEqual(expected.outcomes);
        expect(actual.state).toEqual(expected.state);
        expect(isDraft(actual.state)).toBe(false);
        expect(JSON.stringify(start)).toBe(before);
        // Nothing applied: the very same state object comes back.
        if (expected.outcomes.every((outcome) => 'refused' in outcome || outcome.events.length === 0)) expect(actual.state).toBe(start);
      }),
      { numRuns: 300 },
    );
  });

  it('undoes the part of a command whose evolve threw, and goes on with the next commands', () => {
    const domain = defineDomain({
      name: 'flaky',
      initialState: (): { items: Record<string, number>; total: number } => ({ items: {}, total: 0 }),
      commands: { put: z.object({ key: z.string(), value: z.number(), explode: z.boolean() }) },
      events: { put: z.object({ key: z.string(), value: z.number(), explode: z.boolean() }) },
      decide: { put: (payload) => [{ type: 'put', data: payload }] },
      evolve: {
        put: (draft, { key, value, explode }) => {
          draft.items[key] = value;
          draft.total += value;
          if (explode) throw new Error('evolve bug');
        },
      },
    });
    const batch = createCommandBatch(domain, domain.initialState(), 'flaky/one');
    batch.apply({ id: 'a', type: 'put', payload: { key: 'a', value: 1, explode: false } }, { now: 1, version: 0 });
    expect(() => batch.apply({ id: 'b', type: 'put', payload: { key: 'b', value: 10, explode: true } }, { now: 1, version: 1 })).toThrow('evolve bug');
    batch.apply({ id: 'c', type: 'put', payload: { key: 'c', value: 100, explode: false } }, { now: 1, version: 1 });
    expect(batch.finish()).toEqual({ items: { a: 1, c: 100 }, total: 101 });
  });

  it('gives events plain copies of any part of the state decide put in them', () => {
    const domain = defineDomain({
      name: 'echo',
      initialState: () => ({ list: [] as string[], meta: { count: 0 } }),
      commands: { add: z.object({ item: z.string() }) },
      events: { added: z.object({ item: z.string(), before: z.unknown() }) },
      // A decider that quotes its state in the event (allowed, if unusual).
      decide: { add: ({ item }, state) => [{ type: 'added', data: { item, before: { list: state.list, meta: state.meta } } }] },
      evolve: {
        added: (draft, { item }) => {
          draft.list.push(item);
          draft.meta.count += 1;
        },
      },
    });
    const batch = createCommandBatch(domain, domain.initialState(), 'echo/one');
    const first = batch.apply({ id: 'a', type: 'add', payload: { item: 'x' } }, { now: 1, version: 0 });
    const second = batch.apply({ id: 'b', type: 'add', payload: { item: 'y' } }, { now: 1, version: 1 });
    const state = batch.finish();
    expect(state).toEqual({ list: ['x', 'y'], meta: { count: 2 } });
    // After the batch the draft is gone; the events still read (and encode) what decide saw.
    expect(JSON.parse(JSON.stringify(first[0]!.data))).toEqual({ item: 'x', before: { list: [], meta: { count: 0 } } });
    expect(JSON.parse(JSON.stringify(second[0]!.data))).toEqual({ item: 'y', before: { list: ['x'], meta: { count: 1 } } });
  });

  it('applies one command at a time for a domain without openDraft', () => {
    const { openDraft: _unused, ...withoutDraft } = tasksDomain;
    const steps: Step[] = [
      { type: 'task.create', payload: { id: 't1', title: 'a' } },
      { type: 'task.update', payload: { id: 'nope', title: 'b' } },
      { type: 'task.update', payload: { id: 't1', title: 'b' } },
    ];
    const actual = batched(withoutDraft as AnyDomain, tasksDomain.initialState(), steps);
    expect(actual).toEqual(oneByOne(tasksDomain, tasksDomain.initialState(), steps));
    expect(actual.outcomes[1]).toEqual({ refused: 'rejection:task.notFound' });
  });
});

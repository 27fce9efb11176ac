import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeDomainLaws } from '../testing/index.js';
import { domainStream, rejectionOf } from '../../test/domainStream.js';
import { DomainRejection, LockstepError } from '../errors.js';
import type { Random } from '../random.js';
import { orchestrationDomain as domain, type OrchestrationState } from './orchestration.js';

const createStream = (now?: number) => domainStream(domain, 'orchestration/default', now);

function checkTotals(state: OrchestrationState): void {
  const entries = Object.values(state.workspaces);
  expect(state.totals).toEqual({
    running: entries.reduce((sum, entry) => sum + entry.running, 0),
    desired: entries.reduce((sum, entry) => sum + entry.desired, 0),
  });
}

describe('orchestration domain', () => {
  it('keeps totals equal to the sums as IDEs set their desired counts (seed 000)', () => {
    const stream = createStream();
    stream.run('workspace.setDesired', { workspaceId: '/b/ide1', desired: 1 }, { clientId: 'B1' });
    expect(stream.state.totals.desired).toBe(1);
    stream.run('workspace.setDesired', { workspaceId: '/a/ide2', desired: 1 }, { clientId: 'A2' });
    expect(stream.state.totals.desired).toBe(2);
    stream.run('workspace.setDesired', { workspaceId: '/a/ide3', desired: 2 }, { clientId: 'A3' });
    expect(stream.state.totals).toEqual({ desired: 4, running: 0 });
    stream.run('workspace.setRunning', { workspaceId: '/a/ide3', running: 2 });
    stream.run('workspace.setDesired', { workspaceId: '/a/ide3', desired: 0 });
    expect(stream.state.totals).toEqual({ desired: 2, running: 2 });
    checkTotals(stream.state);
  });

  it('records the time of the decision and creates missing entries with the other count at 0', () => {
    const stream = createStream(5_000);
    const events = stream.run('workspace.setRunning', { workspaceId: 'w', running: 3 });
    expect(events).toEqual([{ version: 1, type: 'workspace.runningSet', data: { workspaceId: 'w', running: 3, at: 5_000 }, time: 5_000, commandId: 'cmd-1' }]);
    expect(stream.state.workspaces['w']).toEqual({ running: 3, desired: 0, updatedAt: 5_000 });
  });

  it('produces no event when the value and the lease do not change', () => {
    const stream = createStream();
    stream.run('workspace.setDesired', { workspaceId: 'w', desired: 2, lease: true }, { clientId: 'ide' });
    expect(stream.run('workspace.setDesired', { workspaceId: 'w', desired: 2 })).toEqual([]);
    expect(stream.run('workspace.setDesired', { workspaceId: 'w', desired: 2, lease: true }, { clientId: 'ide' })).toEqual([]);
    // A new entry is always recorded, even at 0: it registers the workspace.
    expect(stream.run('workspace.setDesired', { workspaceId: 'v', desired: 0 })).toHaveLength(1);
    expect(stream.version).toBe(2);
  });

  it('takes, keeps, moves and releases leases', () => {
    const stream = createStream();
    stream.run('workspace.setDesired', { workspaceId: 'w', desired: 1, lease: true }, { clientId: 'ide-1' });
    expect(stream.state.workspaces['w']?.leasedTo).toBe('ide-1');
    // Without `lease`, the lease stays with its holder, whoever sends the command.
    stream.run('workspace.setRunning', { workspaceId: 'w', running: 1 }, { clientId: 'cli' });
    expect(stream.state.workspaces['w']?.leasedTo).toBe('ide-1');
    stream.run('workspace.setRunning', { workspaceId: 'w', running: 1, lease: true }, { clientId: 'ide-2' });
    expect(stream.log.at(-1)?.data).toMatchObject({ leasedTo: 'ide-2' });
    expect(stream.state.workspaces['w']?.leasedTo).toBe('ide-2');
    stream.run('workspace.setRunning', { workspaceId: 'w', running: 1, lease: false });
    expect(stream.state.workspaces['w']).not.toHaveProperty('leasedTo');
  });

  it('lists lease holders and expires only the holder’s entry', () => {
    const stream = createStream();
    stream.run('workspace.setDesired', { workspaceId: '/a', desired: 1, lease: true }, { clientId: 'ide-a' });
    stream.run('workspace.setDesired', { workspaceId: '/b', desired: 2, lease: true }, { clientId: 'ide-b' });
    stream.run('workspace.setDesired', { workspaceId: '/c', desired: 4 }, { clientId: 'ide-a' });
    const leases = domain.leases!;
    expect([...leases.holders(stream.state)]).toEqual([
      { key: '/a', holder: 'ide-a' },
      { key: '/b', holder: 'ide-b' },
    ]);

    const expire = leases.expire('/a', 'ide-a');
    expect(expire).toEqual({ type: 'workspace.expireLease', payload: { workspaceId: '/a', holder: 'ide-a' } });
    expect(stream.run(expire.type, expire.payload)).toMatchObject([{ type: 'workspace.removed', data: { workspaceId: '/a', reason: 'leaseExpired' } }]);
    expect(Object.keys(stream.state.workspaces)).toEqual(['/b', '/c']);
    expect(stream.state.totals.desired).toBe(6);

    // Unattended and late: a missing entry or one that changed hands is left alone, never rejected.
    expect(stream.run('workspace.expireLease', { workspaceId: '/a', holder: 'ide-a' })).toEqual([]);
    expect(stream.run('workspace.expireLease', { workspaceId: '/b', holder: 'ide-a' })).toEqual([]);
    expect(stream.run('workspace.expireLease', { workspaceId: '/c', holder: 'ide-a' })).toEqual([]);
    checkTotals(stream.state);
  });

  it('removes a workspace and rejects removing a missing one with workspace.notFound', () => {
    const stream = createStream();
    stream.run('workspace.setDesired', { workspaceId: 'w', desired: 3 });
    expect(stream.run('workspace.remove', { workspaceId: 'w' })).toMatchObject([{ data: { reason: 'removed' } }]);
    expect(stream.state).toEqual(domain.initialState());
    const rejection = rejectionOf(() => stream.run('workspace.remove', { workspaceId: 'w' }));
    expect(rejection.reason).toBe('workspace.notFound');
    expect(rejection.details).toEqual({ workspaceId: 'w' });
  });

  it('rejects a lease without a client id with lease.noClient', () => {
    const stream = createStream();
    expect(rejectionOf(() => stream.run('workspace.setDesired', { workspaceId: 'w', desired: 1, lease: true })).reason).toBe('lease.noClient');
    expect(stream.version).toBe(0);
  });

  it.each([
    ['an empty workspace id', 'workspace.setDesired', { workspaceId: '', desired: 1 }],
    ['a workspace id over 512 characters', 'workspace.setDesired', { workspaceId: 'x'.repeat(513), desired: 1 }],
    ['a reserved workspace id', 'workspace.setDesired', { workspaceId: '__proto__', desired: 1 }],
    ['a negative count', 'workspace.setRunning', { workspaceId: 'w', running: -1 }],
    ['a fractional count', 'workspace.setRunning', { workspaceId: 'w', running: 1.5 }],
    ['a count over the maximum', 'workspace.setDesired', { workspaceId: 'w', desired: 10_001 }],
    ['an unknown field', 'workspace.setDesired', { workspaceId: 'w', desired: 1, desird: 2 }],
    ['an unknown command', 'workspace.reset', {}],
  ])('refuses %s as invalid params', (_, type, payload) => {
    const stream = createStream();
    expect(() => stream.run(type, payload)).toThrow(expect.objectContaining({ code: 'INVALID_PARAMS' }));
  });

  it('accepts workspace ids that are absolute paths with any characters', () => {
    const stream = createStream();
    const workspaceId = 'C:\\Users\\dev\\my project (1)/ünïcode';
    stream.run('workspace.setDesired', { workspaceId, desired: 1 });
    expect(stream.state.workspaces[workspaceId]?.desired).toBe(1);
    stream.run('workspace.setDesired', { workspaceId: 'constructor-ish', desired: 1 });
    expect(rejectionOf(() => stream.run('workspace.remove', { workspaceId: 'toString' })).reason).toBe('workspace.notFound');
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: random command sequences, valid and invalid, against a plain model.
// ---------------------------------------------------------------------------------------------

const workspaceIdArb = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('/home/a/proj', '/home/b/proj', 'C:\\ws', 'w') },
  { weight: 1, arbitrary: fc.constantFrom('', '__proto__', 'hasOwnProperty', 'x'.repeat(513)) },
);
const countArb = fc.oneof({ weight: 10, arbitrary: fc.integer({ min: 0, max: 12 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 0.5, 10_001) });
const clientArb = fc.constantFrom('ide-1', 'ide-2', undefined);
const leaseArb = fc.constantFrom(true, false, undefined);

const commandArb = fc.record({
  clientId: clientArb,
  advance: fc.integer({ min: 0, max: 3 }),
  command: fc.oneof(
    fc.record({ type: fc.constant('workspace.setDesired'), payload: fc.record({ workspaceId: workspaceIdArb, desired: countArb, lease: leaseArb }) }),
    fc.record({ type: fc.constant('workspace.setRunning'), payload: fc.record({ workspaceId: workspaceIdArb, running: countArb, lease: leaseArb }) }),
    fc.record({ type: fc.constant('workspace.remove'), payload: fc.record({ workspaceId: workspaceIdArb }) }),
    fc.record({ type: fc.constant('workspace.expireLease'), payload: fc.record({ workspaceId: workspaceIdArb, holder: fc.constantFrom('ide-1', 'ide-2') }) }),
    fc.record({ type: fc.constantFrom('workspace.nope'), payload: fc.anything() }),
  ),
});

/** Drops undefined members, as JSON does on the wire. */
function wire(payload: unknown): unknown {
  return JSON.parse(JSON.stringify(payload ?? null));
}

describe('orchestration properties', () => {
  it('totals equal the sums after every event; failed commands change nothing; replay gives the same state', () => {
    fc.assert(
      fc.property(fc.array(commandArb, { maxLength: 60 }), (steps) => {
        const stream = createStream();
        const model = new Map<string, { running: number; desired: number; leasedTo: string | undefined }>();
        for (const { clientId, advance, command } of steps) {
          stream.advance(advance);
          const before = stream.state;
          const snapshot = JSON.stringify(before);
          let events;
          try {
            events = stream.run(command.type, wire(command.payload), clientId === undefined ? {} : { clientId });
          } catch (error) {
            const expected = error instanceof DomainRejection || (error instanceof LockstepError && error.code === 'INVALID_PARAMS');
            if (!expected) throw error;
            expect(stream.state).toBe(before);
            expect(JSON.stringify(stream.state)).toBe(snapshot);
            continue;
          }
          expect(JSON.stringify(before)).toBe(snapshot); // decide and evolve never mutate their input
          // Every intermediate state respects the invariant, not only the final one.
          let state = before;
          for (const event of events) {
            state = domain.evolve(state, event);
            checkTotals(state);
          }
          expect(state).toEqual(stream.state);
          applyToModel(model, command.type, command.payload as AnyPayload, clientId);
          expect(toModel(stream.state)).toEqual(model);
        }
        expect(domain.evolveAll(domain.initialState(), stream.log)).toEqual(stream.state);
        expect(JSON.parse(JSON.stringify(stream.state))).toEqual(stream.state);
      }),
      { numRuns: 300 },
    );
  });
});

type Model = Map<string, { running: number; desired: number; leasedTo: string | undefined }>;
type AnyPayload = { workspaceId: string; desired?: number; running?: number; lease?: boolean; holder?: string };

function applyToModel(model: Model, type: string, payload: AnyPayload, clientId: string | undefined): void {
  const { workspaceId, lease } = payload;
  const entry = model.get(workspaceId) ?? { running: 0, desired: 0, leasedTo: undefined };
  const leasedTo = lease === undefined ? entry.leasedTo : lease ? clientId : undefined;
  if (type === 'workspace.setDesired') model.set(workspaceId, { ...entry, desired: payload.desired!, leasedTo });
  if (type === 'workspace.setRunning') model.set(workspaceId, { ...entry, running: payload.running!, leasedTo });
  if (type === 'workspace.remove') model.delete(workspaceId);
  if (type === 'workspace.expireLease' && entry.leasedTo === payload.holder) model.delete(workspaceId);
}

function toModel(state: OrchestrationState): Model {
  return new Map(Object.entries(state.workspaces).map(([id, { running, desired, leasedTo }]) => [id, { running, desired, leasedTo }]));
}

// ---------------------------------------------------------------------------------------------
// The laws every domain keeps (@lockstep/core/testing).
// ---------------------------------------------------------------------------------------------

const lawWorkspace = (random: Random) =>
  random.chance(0.9) ? random.pick(['/home/a/proj', '/home/b/proj', 'C:\\ws', 'w']) : random.pick(['', '__proto__', 'hasOwnProperty', 'x'.repeat(513)]);
const lawCount = (random: Random) => (random.chance(0.9) ? random.int(13) : random.pick([-1, 0.5, 10_001]));
const lawLease = (random: Random) => random.pick([true, false, undefined]);

describeDomainLaws(domain, {
  runner: { describe, it },
  clientIds: ['ide-1', 'ide-2', undefined],
  commands: {
    'workspace.setDesired': (random) => ({ workspaceId: lawWorkspace(random), desired: lawCount(random), lease: lawLease(random) }),
    'workspace.setRunning': (random) => ({ workspaceId: lawWorkspace(random), running: lawCount(random), lease: lawLease(random) }),
    'workspace.remove': (random) => ({ workspaceId: lawWorkspace(random) }),
    'workspace.expireLease': (random) => ({ workspaceId: lawWorkspace(random), holder: random.pick(['ide-1', 'ide-2']) }),
  },
});

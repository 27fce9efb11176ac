import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeDomainLaws } from '../testing/index.js';
import { applyCommand } from '../applyCommand.js';
import { domainStream, rejectionOf } from '../../test/domainStream.js';
import { deterministicIds } from '../domain.js';
import type { Event } from '../envelope.js';
import { DomainRejection, LockstepError } from '../errors.js';
import type { Random } from '../random.js';
import { TASK_LIMITS, sessionCount, sessionsOfTask, taskCount, tasksByStatus, tasksDomain as domain, tasksOfSession, type TasksState } from './tasks.js';

const createStream = (now?: number) => domainStream(domain, 'tasks/proj_1', now);

/** The id of the entity a create command made. */
function createdId(events: { data: unknown }[]): string | undefined {
  return (events[0]?.data as { id?: string } | undefined)?.id;
}

/** Every link is on both sides, points at existing entities and is listed once. */
function checkLinks(state: TasksState): void {
  for (const [id, task] of Object.entries(state.tasks)) {
    expect(task.id).toBe(id);
    expect(new Set(task.sessionIds).size).toBe(task.sessionIds.length);
    for (const sessionId of task.sessionIds) expect(state.sessions[sessionId]?.taskIds).toContain(id);
    expect(task.completedAt !== undefined).toBe(task.status === 'completed');
  }
  for (const [id, session] of Object.entries(state.sessions)) {
    expect(session.id).toBe(id);
    expect(new Set(session.taskIds).size).toBe(session.taskIds.length);
    for (const taskId of session.taskIds) expect(state.tasks[taskId]?.sessionIds).toContain(id);
    if (session.exitCode !== undefined || session.signal !== undefined || session.reason !== undefined) expect(['exited', 'failed']).toContain(session.status);
  }
}

function board() {
  const stream = createStream();
  stream.runBrief('task.create', { id: 't1', title: 'Write the spec' });
  stream.runBrief('task.create', { id: 't2', title: 'Build it', priority: 'high' });
  stream.runBrief('session.create', { id: 's1', name: 'claude #1' });
  stream.runBrief('session.create', { id: 's2', kind: 'terminal' });
  stream.runBrief('session.addTask', { sessionId: 's1', taskId: 't1' });
  stream.runBrief('session.addTask', { sessionId: 's1', taskId: 't2' });
  stream.runBrief('session.addTask', { sessionId: 's2', taskId: 't1' });
  return stream;
}

describe('tasks domain: tasks', () => {
  it('creates a task with defaults, trimming the title', () => {
    const stream = createStream();
    expect(stream.runBrief('task.create', { id: 't1', title: '  Ship it  ' })).toEqual([
      { type: 'task.created', data: { id: 't1', title: 'Ship it', description: '', status: 'pending', priority: 'medium', at: 1_000 } },
    ]);
    expect(stream.state.tasks['t1']).toEqual({
      id: 't1',
      title: 'Ship it',
      description: '',
      status: 'pending',
      priority: 'medium',
      sessionIds: [],
      createdAt: 1_000,
      updatedAt: 1_000,
    });
  });

  it('derives a missing id from the command id, so a retried create yields the same id', () => {
    const first = createStream().runBrief('task.create', { title: 'A' }, { id: 'cmd-retry' });
    const retry = createStream().runBrief('task.create', { title: 'A' }, { id: 'cmd-retry' });
    const other = createStream().runBrief('task.create', { title: 'A' }, { id: 'cmd-other' });
    expect(createdId(first)).toBe(deterministicIds('cmd-retry')('task'));
    expect(createdId(retry)).toBe(createdId(first));
    expect(createdId(other)).not.toBe(createdId(first));
    expect(createdId(first)).toMatch(/^task_[a-z0-9]+$/);
  });

  it('rejects a duplicate id with task.exists', () => {
    const stream = board();
    expect(rejectionOf(() => stream.runBrief('task.create', { id: 't1', title: 'again' })).reason).toBe('task.exists');
  });

  it('updates only what changed, sets completedAt on completion and clears it on leaving completed', () => {
    const stream = board();
    stream.advance(10);
    expect(stream.runBrief('task.update', { id: 't1', status: 'completed', title: 'Write the spec' })).toEqual([
      { type: 'task.updated', data: { id: 't1', changes: { status: 'completed', completedAt: 1_010 }, at: 1_010 } },
    ]);
    expect(stream.state.tasks['t1']).toMatchObject({ status: 'completed', completedAt: 1_010, updatedAt: 1_010, createdAt: 1_000 });
    stream.advance(10);
    stream.runBrief('task.update', { id: 't1', status: 'in_progress', prompt: 'continue' });
    expect(stream.state.tasks['t1']).not.toHaveProperty('completedAt');
    expect(stream.state.tasks['t1']).toMatchObject({ status: 'in_progress', prompt: 'continue', updatedAt: 1_020 });
    stream.runBrief('task.update', { id: 't1', prompt: null });
    expect(stream.state.tasks['t1']).not.toHaveProperty('prompt');
  });

  it('completes at creation when created completed', () => {
    const stream = createStream();
    stream.runBrief('task.create', { id: 't', title: 'done already', status: 'completed', prompt: 'p' });
    expect(stream.state.tasks['t']).toMatchObject({ completedAt: 1_000, prompt: 'p' });
  });

  it('treats an update to the current values as a no-op and an empty update as task.noChanges', () => {
    const stream = board();
    expect(stream.runBrief('task.update', { id: 't2', priority: 'high', title: ' Build it ' })).toEqual([]);
    expect(stream.runBrief('task.update', { id: 't2', prompt: null })).toEqual([]);
    expect(rejectionOf(() => stream.runBrief('task.update', { id: 't2' })).reason).toBe('task.noChanges');
  });

  it('rejects updating or deleting a missing task with task.notFound', () => {
    const stream = board();
    expect(rejectionOf(() => stream.runBrief('task.update', { id: 'nope', title: 'x' })).reason).toBe('task.notFound');
    expect(rejectionOf(() => stream.runBrief('task.delete', { id: 'nope' })).reason).toBe('task.notFound');
    // Never answered by Object.prototype.
    expect(rejectionOf(() => stream.runBrief('task.update', { id: 'toString', title: 'x' })).reason).toBe('task.notFound');
  });

  it('deleting a task unlinks it from every session, one explicit event per link', () => {
    const stream = board();
    expect(stream.runBrief('task.delete', { id: 't1' })).toEqual([
      { type: 'session.taskRemoved', data: { sessionId: 's1', taskId: 't1', reason: 'taskDeleted' } },
      { type: 'session.taskRemoved', data: { sessionId: 's2', taskId: 't1', reason: 'taskDeleted' } },
      { type: 'task.deleted', data: { id: 't1' } },
    ]);
    expect(stream.state.sessions['s1']?.taskIds).toEqual(['t2']);
    expect(stream.state.sessions['s2']?.taskIds).toEqual([]);
    checkLinks(stream.state);
  });
});

describe('tasks domain: sessions and links', () => {
  it('creates sessions with defaults: kind agent, status starting, name = id', () => {
    const stream = createStream();
    stream.runBrief('session.create', { id: 's1' });
    expect(stream.state.sessions['s1']).toEqual({
      id: 's1',
      name: 's1',
      kind: 'agent',
      status: 'starting',
      taskIds: [],
      createdAt: 1_000,
      updatedAt: 1_000,
    });
    expect(createdId(stream.runBrief('session.create', {}, { id: 'cmd-x' }))).toBe(deterministicIds('cmd-x')('sess'));
    expect(rejectionOf(() => stream.runBrief('session.create', { id: 's1' })).reason).toBe('session.exists');
  });

  it('links both sides, derives counts, and treats a repeated link as a no-op', () => {
    const stream = board();
    const { state } = stream;
    expect(state.tasks['t1']?.sessionIds).toEqual(['s1', 's2']);
    expect(state.sessions['s1']?.taskIds).toEqual(['t1', 't2']);
    expect(sessionCount(state.tasks['t1']!)).toBe(2);
    expect(taskCount(state.sessions['s2']!)).toBe(1);
    expect(tasksOfSession(state, 's1').map((task) => task.id)).toEqual(['t1', 't2']);
    expect(sessionsOfTask(state, 't1').map((session) => session.name)).toEqual(['claude #1', 's2']);
    expect(tasksOfSession(state, 'missing')).toEqual([]);
    expect(stream.runBrief('session.addTask', { sessionId: 's1', taskId: 't1' })).toEqual([]);
    expect(stream.state).toBe(state);
  });

  it('rejects links to missing entities and removing a missing link', () => {
    const stream = board();
    expect(rejectionOf(() => stream.runBrief('session.addTask', { sessionId: 's1', taskId: 'nope' })).reason).toBe('task.notFound');
    expect(rejectionOf(() => stream.runBrief('session.addTask', { sessionId: 'nope', taskId: 't1' })).reason).toBe('session.notFound');
    expect(rejectionOf(() => stream.runBrief('session.removeTask', { sessionId: 's2', taskId: 't2' })).reason).toBe('link.notFound');
    expect(rejectionOf(() => stream.runBrief('session.removeTask', { sessionId: 's2', taskId: 'nope' })).reason).toBe('task.notFound');
    expect(stream.runBrief('session.removeTask', { sessionId: 's2', taskId: 't1' })).toEqual([
      { type: 'session.taskRemoved', data: { sessionId: 's2', taskId: 't1', reason: 'removed' } },
    ]);
    expect(stream.state.tasks['t1']?.sessionIds).toEqual(['s1']);
  });

  it('deleting a session unlinks it from its tasks, one explicit event per link', () => {
    const stream = board();
    expect(stream.runBrief('session.delete', { id: 's1' })).toEqual([
      { type: 'session.taskRemoved', data: { sessionId: 's1', taskId: 't1', reason: 'sessionDeleted' } },
      { type: 'session.taskRemoved', data: { sessionId: 's1', taskId: 't2', reason: 'sessionDeleted' } },
      { type: 'session.deleted', data: { id: 's1' } },
    ]);
    expect(stream.state.tasks['t1']?.sessionIds).toEqual(['s2']);
    expect(stream.state.tasks['t2']?.sessionIds).toEqual([]);
    expect(rejectionOf(() => stream.runBrief('session.delete', { id: 's1' })).reason).toBe('session.notFound');
    checkLinks(stream.state);
  });

  it('follows the session lifecycle: exit codes only when ended, cleared on restart', () => {
    const stream = board();
    stream.runBrief('session.update', { id: 's1', status: 'running' });
    expect(rejectionOf(() => stream.runBrief('session.update', { id: 's1', exitCode: 1 })).reason).toBe('session.exitCodeWhileActive');
    stream.runBrief('session.update', { id: 's1', status: 'failed', exitCode: 137 });
    expect(stream.state.sessions['s1']).toMatchObject({ status: 'failed', exitCode: 137 });
    expect(stream.runBrief('session.update', { id: 's1', exitCode: 137 })).toEqual([]);
    expect(stream.runBrief('session.update', { id: 's1', status: 'starting', name: 'retry' })).toEqual([
      { type: 'session.updated', data: { id: 's1', changes: { name: 'retry', status: 'starting', exitCode: null }, at: 1_000 } },
    ]);
    expect(stream.state.sessions['s1']).not.toHaveProperty('exitCode');
    expect(rejectionOf(() => stream.runBrief('session.update', { id: 's1' })).reason).toBe('session.noChanges');
    expect(rejectionOf(() => stream.runBrief('session.update', { id: 'nope', name: 'x' })).reason).toBe('session.notFound');
  });

  it('records how a session ended (exit code, signal, reason) only while ended, and clears it all on leaving', () => {
    const stream = board();
    stream.runBrief('session.update', { id: 's1', status: 'running' });
    const active = rejectionOf(() => stream.runBrief('session.update', { id: 's1', signal: 'SIGHUP', reason: 'stopped' }));
    expect(active.reason).toBe('session.exitCodeWhileActive');
    expect(active.details).toMatchObject({ fields: ['signal', 'reason'], status: 'running' });
    expect(stream.runBrief('session.update', { id: 's1', status: 'exited', exitCode: 129, signal: 'SIGHUP', reason: 'stopped' })).toEqual([
      { type: 'session.updated', data: { id: 's1', changes: { status: 'exited', exitCode: 129, signal: 'SIGHUP', reason: 'stopped' }, at: 1_000 } },
    ]);
    expect(stream.state.sessions['s1']).toMatchObject({ status: 'exited', exitCode: 129, signal: 'SIGHUP', reason: 'stopped' });
    expect(stream.runBrief('session.update', { id: 's1', status: 'running' })).toEqual([
      { type: 'session.updated', data: { id: 's1', changes: { status: 'running', exitCode: null, signal: null, reason: null }, at: 1_000 } },
    ]);
    for (const field of ['exitCode', 'signal', 'reason']) expect(stream.state.sessions['s1']).not.toHaveProperty(field);
    expect(() => stream.runBrief('session.update', { id: 's1', status: 'exited', signal: 'hup' })).toThrow(LockstepError);
  });

  it('keeps the profile and prompt a session was created with; stored sessions without them still replay', () => {
    const stream = createStream();
    expect(stream.runBrief('session.create', { id: 'a1', profile: 'agent', prompt: 'Summarise the README' })).toEqual([
      {
        type: 'session.created',
        data: { id: 'a1', name: 'a1', kind: 'agent', status: 'starting', profile: 'agent', prompt: 'Summarise the README', at: 1_000 },
      },
    ]);
    expect(stream.state.sessions['a1']).toMatchObject({ profile: 'agent', prompt: 'Summarise the README' });
    expect(() => stream.runBrief('session.create', { id: 'a2', profile: '-bad name' })).toThrow(LockstepError);
    // An event stored before these fields existed.
    const stored = { id: 'old', name: 'old', kind: 'terminal', status: 'running', at: 5 };
    expect(domain.eventVersion('session.created')).toBe(1);
    expect(domain.parseEvent('session.created', stored)).toEqual(stored);
    const state = domain.evolveAll(domain.initialState(), [
      { version: 1, type: 'session.created', data: stored, time: 5 },
      { version: 2, type: 'session.updated', data: { id: 'old', changes: { status: 'exited', exitCode: 129 }, at: 6 }, time: 6 },
    ]);
    expect(state.sessions['old']).toEqual({
      id: 'old',
      name: 'old',
      kind: 'terminal',
      status: 'exited',
      exitCode: 129,
      taskIds: [],
      createdAt: 5,
      updatedAt: 6,
    });
  });

  it('caps the links of one entity with link.limit', () => {
    const stream = createStream();
    stream.runBrief('session.create', { id: 's' });
    let state = stream.state;
    // Build a full session directly through events, which is much faster than 1,000 commands.
    const events: Event[] = [];
    for (let i = 0; i < TASK_LIMITS.links; i++) {
      events.push({ version: 0, time: 0, type: 'task.created', data: { id: `t${i}`, title: 't', description: '', status: 'pending', priority: 'low', at: 0 } });
      events.push({ version: 0, time: 0, type: 'session.taskAdded', data: { sessionId: 's', taskId: `t${i}`, at: 0 } });
    }
    events.push({ version: 0, time: 0, type: 'task.created', data: { id: 'extra', title: 't', description: '', status: 'pending', priority: 'low', at: 0 } });
    state = domain.evolveAll(state, events);
    const rejection = rejectionOf(() =>
      applyCommand(domain, state, { id: 'c', type: 'session.addTask', payload: { sessionId: 's', taskId: 'extra' } }, { now: 1 }),
    );
    expect(rejection.reason).toBe('link.limit');
  });

  it('groups tasks by status', () => {
    const stream = board();
    stream.runBrief('task.update', { id: 't2', status: 'blocked' });
    const groups = tasksByStatus(stream.state);
    expect(groups.pending.map((task) => task.id)).toEqual(['t1']);
    expect(groups.blocked.map((task) => task.id)).toEqual(['t2']);
    expect(groups.completed).toEqual([]);
  });

  it.each([
    ['a blank title', 'task.create', { title: '   ' }],
    ['a title over the limit', 'task.create', { title: 'x'.repeat(TASK_LIMITS.title + 1) }],
    ['a description over the limit', 'task.create', { title: 't', description: 'x'.repeat(TASK_LIMITS.text + 1) }],
    ['an unknown task status', 'task.create', { title: 't', status: 'done' }],
    ['an unknown priority', 'task.create', { title: 't', priority: 'critical' }],
    ['an id with a slash', 'task.create', { id: 'has/slash', title: 't' }],
    ['a reserved id', 'task.create', { id: '__proto__', title: 't' }],
    ['a derived field', 'task.create', { title: 't', sessionCount: 3 }],
    ['an unknown status in an update', 'task.update', { id: 't1', status: 'archived' }],
    ['an unknown session kind', 'session.create', { kind: 'robot' }],
    ['an unknown session status', 'session.update', { id: 's1', status: 'dead' }],
    ['a fractional exit code', 'session.update', { id: 's1', exitCode: 1.5 }],
    ['a link without a task', 'session.addTask', { sessionId: 's1' }],
  ])('refuses %s as invalid params, before decide', (_, type, payload) => {
    expect(() => board().runBrief(type, payload)).toThrow(expect.objectContaining({ code: 'INVALID_PARAMS' }));
  });
});

describe('tasks domain: versioned events', () => {
  it('upcasts a stored v1 task.created (no priority) to v2 and evolves it', () => {
    const storedV1 = { id: 't-old', title: 'From an old release', description: '', status: 'pending', at: 42 };
    expect(domain.eventVersion('task.created')).toBe(2);
    expect(domain.eventVersion('task.deleted')).toBe(1);
    expect(() => domain.parseEvent('task.created', storedV1)).toThrow();
    const upcast = domain.upcast('task.created', 1, storedV1);
    expect(upcast).toEqual({ ...storedV1, priority: 'medium' });
    expect(domain.parseEvent('task.created', upcast)).toEqual(upcast);
    const state = domain.evolve(domain.initialState(), { version: 1, type: 'task.created', data: upcast, time: 42 });
    expect(state.tasks['t-old']).toEqual({
      id: 't-old',
      title: 'From an old release',
      description: '',
      status: 'pending',
      priority: 'medium',
      sessionIds: [],
      createdAt: 42,
      updatedAt: 42,
    });
    // Current data passes through unchanged.
    expect(domain.upcast('task.created', 2, upcast)).toBe(upcast);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties: random sequences, valid and invalid.
// ---------------------------------------------------------------------------------------------

const taskIdArb = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom('t1', 't2', 't3') },
  { weight: 1, arbitrary: fc.constantFrom('', 'bad id', 'constructor') },
);
const sessionIdArb = fc.oneof({ weight: 10, arbitrary: fc.constantFrom('s1', 's2', 's3') }, { weight: 1, arbitrary: fc.constantFrom('', 'x'.repeat(129)) });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const taskStatusArb = fc.constantFrom('pending', 'in_progress', 'blocked', 'completed', 'cancelled', 'bogus');
const sessionStatusArb = fc.constantFrom('starting', 'running', 'idle', 'exited', 'failed', 'bogus');

const commandArb = fc.oneof(
  fc.record({
    type: fc.constant('task.create'),
    payload: fc.record({
      id: maybe(taskIdArb),
      title: fc.constantFrom('a', ' b ', '  '),
      status: maybe(taskStatusArb),
      priority: maybe(fc.constantFrom('low', 'urgent')),
    }),
  }),
  fc.record({
    type: fc.constant('task.update'),
    payload: fc.record({ id: taskIdArb, title: maybe(fc.constantFrom('a', 'c')), status: maybe(taskStatusArb), prompt: maybe(fc.constantFrom('p', null)) }),
  }),
  fc.record({ type: fc.constant('task.delete'), payload: fc.record({ id: taskIdArb }) }),
  fc.record({ type: fc.constant('session.create'), payload: fc.record({ id: maybe(sessionIdArb), kind: maybe(fc.constantFrom('cli', 'other')) }) }),
  fc.record({
    type: fc.constant('session.update'),
    payload: fc.record({
      id: sessionIdArb,
      status: maybe(sessionStatusArb),
      exitCode: maybe(fc.constantFrom(0, 1)),
      signal: maybe(fc.constantFrom('SIGHUP', 'bad')),
      reason: maybe(fc.constantFrom('stopped', '')),
      name: maybe(fc.constant('n')),
    }),
  }),
  fc.record({ type: fc.constant('session.delete'), payload: fc.record({ id: sessionIdArb }) }),
  fc.record({
    type: fc.constantFrom('session.addTask', 'session.addTask', 'session.removeTask'),
    payload: fc.record({ sessionId: sessionIdArb, taskId: taskIdArb }),
  }),
);

describe('tasks properties', () => {
  it('keeps every link on both sides after every event; failed commands change nothing; replay gives the same state', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(commandArb, fc.nat(3)), { maxLength: 80 }), (steps) => {
        const stream = createStream();
        for (const [command, advance] of steps) {
          stream.advance(advance);
          const before = stream.state;
          const snapshot = JSON.stringify(before);
          try {
            stream.runBrief(command.type, JSON.parse(JSON.stringify(command.payload)));
          } catch (error) {
            const expected = error instanceof DomainRejection || (error instanceof LockstepError && error.code === 'INVALID_PARAMS');
            if (!expected) throw error;
            expect(stream.state).toBe(before);
            expect(JSON.stringify(stream.state)).toBe(snapshot);
            continue;
          }
          expect(JSON.stringify(before)).toBe(snapshot); // decide and evolve never mutate their input
          checkLinks(stream.state);
        }
        let state = domain.initialState();
        for (const event of stream.log) {
          state = domain.evolve(state, event);
          checkLinks(state);
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

/** `value` one time in two, otherwise nothing (the key is left out). */
const lawMaybe = <T>(random: Random, key: string, value: () => T) => (random.chance(0.5) ? { [key]: value() } : {});
const lawTaskId = (random: Random) => (random.chance(0.9) ? random.pick(['t1', 't2', 't3']) : random.pick(['', 'bad id', 'constructor']));
const lawSessionId = (random: Random) => (random.chance(0.9) ? random.pick(['s1', 's2', 's3']) : random.pick(['', 'x'.repeat(129)]));

describeDomainLaws(domain, {
  runner: { describe, it },
  commands: {
    'task.create': (random) => ({
      title: random.pick(['a', ' b ', '  ']),
      ...lawMaybe(random, 'id', () => lawTaskId(random)),
      ...lawMaybe(random, 'status', () => random.pick(['pending', 'in_progress', 'blocked', 'completed', 'cancelled', 'bogus'])),
      ...lawMaybe(random, 'priority', () => random.pick(['low', 'urgent'])),
    }),
    'task.update': (random) => ({
      id: lawTaskId(random),
      ...lawMaybe(random, 'title', () => random.pick(['a', 'c'])),
      ...lawMaybe(random, 'status', () => random.pick(['pending', 'completed', 'bogus'])),
      ...lawMaybe(random, 'prompt', () => random.pick(['p', null])),
    }),
    'task.delete': (random) => ({ id: lawTaskId(random) }),
    'session.create': (random) => ({ ...lawMaybe(random, 'id', () => lawSessionId(random)), ...lawMaybe(random, 'kind', () => random.pick(['cli', 'other'])) }),
    'session.update': (random) => ({
      id: lawSessionId(random),
      ...lawMaybe(random, 'status', () => random.pick(['starting', 'running', 'idle', 'exited', 'failed', 'bogus'])),
      ...lawMaybe(random, 'exitCode', () => random.pick([0, 1])),
      ...lawMaybe(random, 'reason', () => random.pick(['stopped', ''])),
    }),
    'session.delete': (random) => ({ id: lawSessionId(random) }),
    'session.addTask': (random) => ({ sessionId: lawSessionId(random), taskId: lawTaskId(random) }),
    'session.removeTask': (random) => ({ sessionId: lawSessionId(random), taskId: lawTaskId(random) }),
  },
});

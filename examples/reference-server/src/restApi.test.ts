import { FakeClock } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';
import { call, startTestServer, type HttpAnswer } from './testing.js';

/** The REST API over real HTTP, against a server on the embedded file store (terminals off: see sessionTerminals.test.ts). */

const json = (body: unknown) => ({ body });

describe('REST API: orchestration (seed 000)', () => {
  it('sets desired and running per workspace; global totals are the sums; removes a workspace', async () => {
    const server = await startTestServer({ terminals: false });
    expect((await call(server.url, 'GET', '/api/orchestration')).json).toEqual({ version: 0, global: { running: 0, desired: 0 }, workspaces: [] });

    // Seed 000's cross-instance example: IDE 1 on machine B, IDEs 2 and 3 on machine A.
    const b1 = encodeURIComponent('/machine-b/ide-1');
    const a2 = encodeURIComponent('/machine-a/ide-2');
    const a3 = encodeURIComponent('/machine-a/ide-3');
    const first = await call(server.url, 'PUT', `/api/orchestration/workspaces/${b1}/desired`, json({ desired: 1 }));
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({
      workspace: { workspaceId: '/machine-b/ide-1', desired: 1, running: 0 },
      global: { desired: 1, running: 0 },
      version: 1,
    });
    expect(first.headers['etag']).toBe('"1"');
    expect((await call(server.url, 'PUT', `/api/orchestration/workspaces/${a2}/desired`, json({ desired: 1 }))).json.global).toEqual({
      desired: 2,
      running: 0,
    });
    expect((await call(server.url, 'PUT', `/api/orchestration/workspaces/${a3}/desired`, json({ desired: 2 }))).json.global).toEqual({
      desired: 4,
      running: 0,
    });
    const running = await call(server.url, 'PUT', `/api/orchestration/workspaces/${a3}/running`, json({ running: 2 }));
    expect(running.json).toMatchObject({ workspace: { workspaceId: '/machine-a/ide-3', desired: 2, running: 2 }, global: { desired: 4, running: 2 } });

    const all = await call(server.url, 'GET', '/api/orchestration');
    expect(all.json).toMatchObject({ version: 4, global: { desired: 4, running: 2 } });
    expect(all.json.workspaces.map((w: { workspaceId: string; desired: number }) => [w.workspaceId, w.desired])).toEqual([
      ['/machine-a/ide-2', 1],
      ['/machine-a/ide-3', 2],
      ['/machine-b/ide-1', 1],
    ]);
    // Conditional GET: nothing changed since version 4.
    expect((await call(server.url, 'GET', '/api/orchestration', { headers: { 'If-None-Match': '"4"' } })).status).toBe(304);

    const removed = await call(server.url, 'DELETE', `/api/orchestration/workspaces/${b1}`);
    expect(removed.json).toMatchObject({ workspace: { workspaceId: '/machine-b/ide-1', removed: true }, global: { desired: 3, running: 2 }, version: 5 });
  });
});

describe('REST API: tasks and sessions (seeds 002, 003)', () => {
  it('creates, lists, updates and deletes tasks in the seed shape', async () => {
    const server = await startTestServer({ terminals: false });
    const created = await call(
      server.url,
      'POST',
      '/api/tasks',
      json({
        title: 'Refactor authentication service',
        description: 'Split auth into microservice',
        priority: 'high',
        prompt: 'Refactor the monolithic auth...',
      }),
    );
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      id: expect.stringMatching(/^task_/),
      projectId: 'default',
      title: 'Refactor authentication service',
      status: 'pending',
      priority: 'high',
      sessionIds: [],
      sessionCount: 0,
      createdAt: expect.any(Number),
      updatedAt: expect.any(Number),
    });
    expect(created.headers).toMatchObject({ etag: '"1"', 'lockstep-version': '1', 'lockstep-command-id': expect.stringMatching(/^rest:/) });
    const id: string = created.json.id;
    const second = await call(server.url, 'POST', '/api/tasks', json({ id: 'task_2', title: 'Second' }));
    expect(second.json).toMatchObject({ id: 'task_2', priority: 'medium' });

    const list = await call(server.url, 'GET', '/api/tasks');
    expect(list.json).toMatchObject({ projectId: 'default', version: 2 });
    expect(list.json.tasks.map((task: { id: string }) => task.id).sort()).toEqual([id, 'task_2'].sort());

    const done = await call(server.url, 'PATCH', `/api/tasks/${id}`, json({ status: 'completed' }));
    expect(done.status).toBe(200);
    expect(done.json).toMatchObject({ id, status: 'completed', completedAt: expect.any(Number) });
    expect((await call(server.url, 'GET', '/api/tasks?status=completed')).json.tasks.map((task: { id: string }) => task.id)).toEqual([id]);

    const deleted = await call(server.url, 'DELETE', `/api/tasks/${id}`);
    expect(deleted.json).toEqual({ id, deleted: true });
    expect((await call(server.url, 'GET', '/api/tasks')).json.tasks.map((task: { id: string }) => task.id)).toEqual(['task_2']);

    // Another project is another stream.
    const other = await call(server.url, 'POST', '/api/tasks', json({ projectId: 'proj_123', title: 'Elsewhere' }));
    expect(other.json).toMatchObject({ projectId: 'proj_123' });
    expect((await call(server.url, 'GET', '/api/tasks?projectId=proj_123')).json.tasks).toHaveLength(1);
    expect((await server.hub.read('tasks/proj_123')).version).toBe(1);
  });

  it('creates, links, unlinks, updates and deletes sessions; counts are derived on both sides', async () => {
    const server = await startTestServer({ terminals: false });
    await call(server.url, 'POST', '/api/tasks', json({ id: 'task_abc', title: 'Implement login' }));
    const session = await call(server.url, 'POST', '/api/sessions/sess_1', json({ name: 'Claude', kind: 'agent' }));
    expect(session.status).toBe(201);
    expect(session.json).toMatchObject({ id: 'sess_1', name: 'Claude', kind: 'agent', status: 'starting', taskIds: [], taskCount: 0, projectId: 'default' });
    const generated = await call(server.url, 'POST', '/api/sessions', json({ name: 'Anonymous' }));
    expect(generated.json).toMatchObject({ id: expect.stringMatching(/^sess_/), name: 'Anonymous' });
    // No body at all is an empty one.
    expect((await call(server.url, 'POST', '/api/sessions/sess_bare')).json).toMatchObject({ id: 'sess_bare', name: 'sess_bare' });

    const linked = await call(server.url, 'POST', '/api/sessions/sess_1/tasks/task_abc');
    expect(linked.json).toMatchObject({
      session: { id: 'sess_1', taskIds: ['task_abc'], taskCount: 1 },
      task: { id: 'task_abc', sessionIds: ['sess_1'], sessionCount: 1 },
    });
    const unlinked = await call(server.url, 'DELETE', '/api/sessions/sess_1/tasks/task_abc');
    expect(unlinked.json).toMatchObject({ session: { taskIds: [], taskCount: 0 }, task: { sessionIds: [], sessionCount: 0 } });

    const running = await call(server.url, 'PATCH', '/api/sessions/sess_1', json({ status: 'running' }));
    expect(running.json).toMatchObject({ id: 'sess_1', status: 'running' });

    // Deleting a linked session unlinks it from its task (seed 002, example 3).
    await call(server.url, 'POST', '/api/sessions/sess_1/tasks/task_abc');
    expect((await call(server.url, 'DELETE', '/api/sessions/sess_1')).json).toEqual({ id: 'sess_1', deleted: true });
    const tasks = (await call(server.url, 'GET', '/api/tasks')).json.tasks;
    expect(tasks).toEqual([expect.objectContaining({ id: 'task_abc', sessionIds: [], sessionCount: 0 })]);
    const sessions = (await call(server.url, 'GET', '/api/sessions')).json.sessions.map((s: { id: string }) => s.id);
    expect(sessions.sort()).toEqual([generated.json.id, 'sess_bare'].sort());
  });
});

describe('REST API: focus (seed 001)', () => {
  it('focuses sessions; the fifth evicts the least recently active; blur removes', async () => {
    const server = await startTestServer({ terminals: false });
    // Only sessions that exist can be focused (see focus.test.ts).
    for (const id of ['s1', 's2', 's3', 's4', 's5']) await call(server.url, 'POST', `/api/sessions/${id}`);
    for (const id of ['s1', 's2', 's3', 's4']) {
      expect((await call(server.url, 'PUT', '/api/focus', json({ projectId: 'default', sessionId: id, focused: true }))).status).toBe(200);
    }
    // s1 is active again: s2 is now the least recently active.
    await call(server.url, 'PUT', '/api/focus', json({ projectId: 'default', sessionId: 's1', focused: true }));
    const fifth = await call(server.url, 'PUT', '/api/focus', json({ projectId: 'default', sessionId: 's5', focused: true }));
    expect(fifth.json).toMatchObject({ projectId: 'default', focusedSessions: ['s1', 's3', 's4', 's5'], totalFocused: 4, maxFocused: 4 });
    const blurred = await call(server.url, 'PUT', '/api/focus', json({ projectId: 'default', sessionId: 's3', focused: false }));
    expect(blurred.json.focusedSessions).toEqual(['s1', 's4', 's5']);
    expect((await call(server.url, 'GET', '/api/focus')).json).toMatchObject({ focusedSessions: ['s1', 's4', 's5'], version: blurred.json.version });
  });
});

describe('REST API: streams as JSON', () => {
  it('answers any stream by name (two segments or one encoded) and its events since a version', async () => {
    const server = await startTestServer({ terminals: false });
    await call(server.url, 'POST', '/api/tasks', json({ id: 't1', title: 'One' }));
    await call(server.url, 'PATCH', '/api/tasks/t1', json({ status: 'in_progress' }));

    const snapshot = await call(server.url, 'GET', '/api/streams/tasks/default');
    expect(snapshot.json).toMatchObject({ stream: 'tasks/default', version: 2, state: { tasks: { t1: { status: 'in_progress' } }, sessions: {} } });
    expect((await call(server.url, 'GET', '/api/streams/tasks%2Fdefault')).json).toEqual(snapshot.json);

    const events = await call(server.url, 'GET', '/api/streams/tasks/default/events?since=1');
    expect(events.json).toMatchObject({ stream: 'tasks/default', version: 2, head: 2, oldestRetained: 1 });
    expect(events.json.events.map((e: { version: number; type: string }) => [e.version, e.type])).toEqual([[2, 'task.updated']]);
    const all = await call(server.url, 'GET', '/api/streams/tasks%2Fdefault/events');
    expect(all.json.events.map((e: { type: string }) => e.type)).toEqual(['task.created', 'task.updated']);
    // A stream nobody wrote is empty at version 0, not an error.
    expect((await call(server.url, 'GET', '/api/streams/focus/elsewhere')).json).toMatchObject({ version: 0, state: { focused: [] } });
  });
});

describe('REST API: refusals', () => {
  it('answers each bad request with its documented status and code, and changes nothing', async () => {
    const server = await startTestServer({ terminals: false, maxBodyBytes: 4096 });
    await call(server.url, 'POST', '/api/tasks', json({ id: 't1', title: 'Existing' }));
    await call(server.url, 'POST', '/api/sessions/s1');
    await call(server.url, 'PUT', '/api/orchestration/workspaces/ws/desired', json({ desired: 1 }));
    await call(server.url, 'PUT', '/api/focus', json({ sessionId: 's1', focused: true }));
    const streams = ['tasks/default', 'orchestration/default', 'focus/default'];
    const versions = async () => Promise.all(streams.map(async (stream) => (await server.hub.read(stream)).version));
    const before = await versions();

    const cases: Array<[string, () => Promise<HttpAnswer>, number, string, Record<string, unknown>?]> = [
      ['no content type', () => call(server.url, 'POST', '/api/tasks', { raw: '{"title":"x"}' }), 415, 'INVALID_REQUEST'],
      ['text/plain', () => call(server.url, 'POST', '/api/tasks', { raw: '{"title":"x"}', headers: { 'Content-Type': 'text/plain' } }), 415, 'INVALID_REQUEST'],
      [
        'a charset other than UTF-8',
        () => call(server.url, 'POST', '/api/tasks', { raw: '{"title":"x"}', headers: { 'Content-Type': 'application/json; charset=latin1' } }),
        415,
        'INVALID_REQUEST',
      ],
      [
        'malformed JSON',
        () => call(server.url, 'POST', '/api/tasks', { raw: '{"title":', headers: { 'Content-Type': 'application/json' } }),
        400,
        'PARSE_ERROR',
      ],
      ['an array body', () => call(server.url, 'POST', '/api/tasks', json([{ title: 'x' }])), 400, 'INVALID_PARAMS'],
      ['an empty title', () => call(server.url, 'POST', '/api/tasks', json({ title: '' })), 400, 'INVALID_PARAMS', { path: ['title'] }],
      [
        'an unknown priority',
        () => call(server.url, 'POST', '/api/tasks', json({ title: 'x', priority: 'whenever' })),
        400,
        'INVALID_PARAMS',
        { path: ['priority'] },
      ],
      ['an unknown field (a typo)', () => call(server.url, 'POST', '/api/tasks', json({ title: 'x', descripton: 'typo' })), 400, 'INVALID_PARAMS'],
      ['a bad project id', () => call(server.url, 'POST', '/api/tasks', json({ title: 'x', projectId: '../etc' })), 400, 'INVALID_PARAMS'],
      ['a body too large', () => call(server.url, 'POST', '/api/tasks', json({ title: 'x', description: 'y'.repeat(5000) })), 413, 'PAYLOAD_TOO_LARGE'],
      [
        'an id in both URL and body',
        () => call(server.url, 'PATCH', '/api/tasks/t1', json({ id: 'other', status: 'completed' })),
        400,
        'INVALID_PARAMS',
        { path: ['id'] },
      ],
      ['an update without changes', () => call(server.url, 'PATCH', '/api/tasks/t1', json({})), 409, 'COMMAND_REJECTED', { reason: 'task.noChanges' }],
      [
        'an unknown task',
        () => call(server.url, 'PATCH', '/api/tasks/nope', json({ status: 'completed' })),
        404,
        'COMMAND_REJECTED',
        { reason: 'task.notFound' },
      ],
      ['an existing session id', () => call(server.url, 'POST', '/api/sessions/s1'), 409, 'COMMAND_REJECTED', { reason: 'session.exists' }],
      ['linking an unknown task', () => call(server.url, 'POST', '/api/sessions/s1/tasks/nope'), 404, 'COMMAND_REJECTED', { reason: 'task.notFound' }],
      ['unlinking a pair never linked', () => call(server.url, 'DELETE', '/api/sessions/s1/tasks/t1'), 404, 'COMMAND_REJECTED', { reason: 'link.notFound' }],
      [
        'a negative count',
        () => call(server.url, 'PUT', '/api/orchestration/workspaces/ws/desired', json({ desired: -1 })),
        400,
        'INVALID_PARAMS',
        { path: ['desired'] },
      ],
      ['a count that is text', () => call(server.url, 'PUT', '/api/orchestration/workspaces/ws/running', json({ running: 'many' })), 400, 'INVALID_PARAMS'],
      [
        'a lease without a client',
        () => call(server.url, 'PUT', '/api/orchestration/workspaces/ws/desired', json({ desired: 2, lease: true })),
        409,
        'COMMAND_REJECTED',
        { reason: 'lease.noClient' },
      ],
      ['focused that is not a boolean', () => call(server.url, 'PUT', '/api/focus', json({ sessionId: 's2', focused: 'yes' })), 400, 'INVALID_PARAMS'],
      [
        'a bad session id to focus',
        () => call(server.url, 'PUT', '/api/focus', json({ sessionId: 'has space', focused: true })),
        400,
        'INVALID_PARAMS',
        { path: ['sessionId'] },
      ],
      [
        'a stale If-Match',
        () => call(server.url, 'PATCH', '/api/tasks/t1', { body: { status: 'completed' }, headers: { 'If-Match': '"1"' } }),
        409,
        'VERSION_CONFLICT',
        { currentVersion: before[0] },
      ],
      [
        'a malformed If-Match',
        () => call(server.url, 'PATCH', '/api/tasks/t1', { body: { status: 'completed' }, headers: { 'If-Match': 'yesterday' } }),
        400,
        'INVALID_PARAMS',
      ],
      [
        'a malformed Idempotency-Key',
        () => call(server.url, 'POST', '/api/tasks', { body: { title: 'x' }, headers: { 'Idempotency-Key': 'no spaces allowed' } }),
        400,
        'INVALID_PARAMS',
      ],
      ['an unknown query parameter', () => call(server.url, 'GET', '/api/tasks?colour=red'), 400, 'INVALID_PARAMS'],
      ['an unknown route', () => call(server.url, 'GET', '/api/nothing'), 404, 'METHOD_NOT_FOUND'],
      ['a method the route does not answer', () => call(server.url, 'DELETE', '/api/tasks'), 405, 'METHOD_NOT_FOUND', { allowed: ['GET', 'HEAD', 'POST'] }],
      ['a stream of an unknown domain', () => call(server.url, 'GET', '/api/streams/nope/x'), 404, 'UNKNOWN_STREAM'],
      ['a malformed stream name', () => call(server.url, 'GET', '/api/streams/Tasks%2F.x'), 400, 'INVALID_PARAMS'],
      ['a bad percent-escape', () => call(server.url, 'PUT', '/api/orchestration/workspaces/%E0%A4%A/desired', json({ desired: 1 })), 400, 'INVALID_PARAMS'],
      [
        'a foreign Host (DNS rebinding)',
        () => call(server.url, 'POST', '/api/tasks', { body: { title: 'x' }, headers: { Host: 'evil.example:80' } }),
        403,
        'FORBIDDEN',
      ],
    ];
    for (const [name, send, status, code, details] of cases) {
      const answer = await send();
      expect({ name, status: answer.status, code: answer.json?.error?.code }).toEqual({ name, status, code });
      expect(answer.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(typeof answer.json.error.message).toBe('string');
      if (details && 'path' in details) expect(answer.json.error.details.issues).toContainEqual(expect.objectContaining(details));
      else if (details) expect(answer.json.error.details).toMatchObject(details);
    }
    expect(await versions()).toEqual(before);
    expect((await call(server.url, 'DELETE', '/api/tasks')).headers['allow']).toBe('GET, HEAD, POST');
  });

  it('rate limits per client address with 429 and Retry-After', async () => {
    const clock = new FakeClock();
    const server = await startTestServer({ terminals: false, store: 'memory', clock, rateLimit: { requestsPerSecond: 1, burst: 2 } });
    expect((await call(server.url, 'POST', '/api/tasks', json({ title: 'one' }))).status).toBe(201);
    expect((await call(server.url, 'GET', '/api/tasks')).status).toBe(200);
    const refused = await call(server.url, 'POST', '/api/tasks', json({ title: 'two' }));
    expect(refused.status).toBe(429);
    expect(refused.json.error).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterMs: 1000 } });
    expect(refused.headers['retry-after']).toBe('1');
    expect((await server.hub.read('tasks/default')).version).toBe(1);
    await clock.advance(1000);
    expect((await call(server.url, 'POST', '/api/tasks', json({ title: 'two' }))).status).toBe(201);
  });
});

describe('REST API: Idempotency-Key', () => {
  it('makes the key the command id: a retry is applied once and answered the same', async () => {
    const server = await startTestServer({ terminals: false });
    const headers = { 'Idempotency-Key': 'agent-7:create-login-task' };
    const first = await call(server.url, 'POST', '/api/tasks', { body: { title: 'Implement login' }, headers });
    const retry = await call(server.url, 'POST', '/api/tasks', { body: { title: 'Implement login' }, headers });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.json).toEqual(first.json);
    expect(first.headers['lockstep-command-id']).toBe('agent-7:create-login-task');
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.headers['lockstep-version']).toBe('1');
    expect((await call(server.url, 'GET', '/api/tasks')).json.tasks).toHaveLength(1);
    const log = await server.hub.store.read('tasks/default', 1, 10);
    expect(log.map((event) => event.commandId)).toEqual(['agent-7:create-login-task']);

    // The same key for another request is a conflict, not a silent replay.
    const reused = await call(server.url, 'POST', '/api/tasks', { body: { title: 'Something else' }, headers });
    expect(reused.status).toBe(409);
    expect(reused.json.error.code).toBe('COMMAND_ID_CONFLICT');

    // A refused command retried with its key gets the same refusal, even once it would pass.
    const key = { 'Idempotency-Key': 'link-1' };
    const refused = await call(server.url, 'POST', '/api/sessions/s1/tasks/' + first.json.id, { headers: key });
    expect(refused.json.error).toMatchObject({ code: 'COMMAND_REJECTED', details: { reason: 'session.notFound' } });
    await call(server.url, 'POST', '/api/sessions/s1');
    expect((await call(server.url, 'POST', '/api/sessions/s1/tasks/' + first.json.id, { headers: key })).json.error.details.reason).toBe('session.notFound');
  });

  it('keeps exactly-once across a restart on the same data directory', async () => {
    const first = await startTestServer({ terminals: false });
    const dataDir = first.storeDescription.replace(/^file:/, '');
    const headers = { 'Idempotency-Key': 'cli:42' };
    const created = await call(first.url, 'POST', '/api/tasks', { body: { title: 'Survive a restart' }, headers });
    await first.close();
    const second = await startTestServer({ terminals: false, dataDir });
    const retried = await call(second.url, 'POST', '/api/tasks', { body: { title: 'Survive a restart' }, headers });
    expect(retried.json).toEqual(created.json);
    expect(retried.headers['idempotent-replayed']).toBe('true');
    expect((await call(second.url, 'GET', '/api/tasks')).json.tasks).toHaveLength(1);
  });
});

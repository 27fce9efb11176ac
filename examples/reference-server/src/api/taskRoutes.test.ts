import { describe, expect, it } from 'vitest';
import { call, startTestServer } from '../testing.js';

const json = (body: unknown) => ({ body });

describe('completedAt from seed 002 clients', () => {
  it("accepts completedAt with status completed, and stamps the hub's own time instead of the client's", async () => {
    const server = await startTestServer({ terminals: false });
    await call(server.url, 'POST', '/api/tasks', json({ id: 'task_123', title: 'Implement login' }));
    const before = Date.now();
    // As the seed's Python client sends it.
    const patched = await call(server.url, 'PATCH', '/api/tasks/task_123', json({ status: 'completed', completedAt: 1234567890 }));
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ id: 'task_123', status: 'completed' });
    expect(patched.json.completedAt).toBeGreaterThanOrEqual(before);
    expect(patched.json.completedAt).toBeLessThanOrEqual(Date.now());
    // The event says what the hub recorded: no trace of the client's value.
    const events = (await call(server.url, 'GET', '/api/streams/tasks/default/events')).json.events;
    expect(events.at(-1)).toMatchObject({ type: 'task.updated', data: { changes: { status: 'completed', completedAt: patched.json.completedAt } } });

    // Sent again, it agrees: nothing changes, the first stamp stays.
    const again = await call(server.url, 'PATCH', '/api/tasks/task_123', json({ status: 'completed', completedAt: Date.now() + 60_000 }));
    expect(again.status).toBe(200);
    expect(again.json.completedAt).toBe(patched.json.completedAt);

    const created = await call(server.url, 'POST', '/api/tasks', json({ title: 'Done already', status: 'completed', completedAt: 42 }));
    expect(created.status).toBe(201);
    expect(created.json.completedAt).toBeGreaterThanOrEqual(before);
  });

  it('refuses a completedAt that disagrees with the status, or is not a time', async () => {
    const server = await startTestServer({ terminals: false });
    await call(server.url, 'POST', '/api/tasks', json({ id: 't1', title: 'Open' }));
    const cases: Array<[string, unknown]> = [
      ['another status', { status: 'in_progress', completedAt: 1234567890 }],
      ['no status', { completedAt: 1234567890 }],
      ['not a number', { status: 'completed', completedAt: '2024-01-01' }],
      ['negative', { status: 'completed', completedAt: -1 }],
    ];
    for (const [what, body] of cases) {
      const answer = await call(server.url, 'PATCH', '/api/tasks/t1', json(body));
      expect([what, answer.status, answer.json.error.code]).toEqual([what, 400, 'INVALID_PARAMS']);
    }
    expect((await call(server.url, 'POST', '/api/tasks', json({ title: 'x', completedAt: 5 }))).status).toBe(400);
    // Nothing was applied.
    expect((await call(server.url, 'GET', '/api/tasks')).json.tasks).toEqual([expect.objectContaining({ id: 't1', status: 'pending' })]);
  });
});

describe('tasks addressed by id alone (seed 002)', () => {
  it('finds the project that holds the task when the request names none', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory' });
    await call(server.url, 'POST', '/api/tasks', json({ projectId: 'proj_123', id: 'task_abc123', title: 'On another board' }));
    await call(server.url, 'POST', '/api/tasks', json({ id: 'task_default', title: 'On the default board' }));

    // As the seed's curl sends it: no projectId anywhere.
    const patched = await call(server.url, 'PATCH', '/api/tasks/task_abc123', json({ status: 'completed' }));
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json).toMatchObject({ id: 'task_abc123', status: 'completed' });
    expect((await server.hub.read('tasks/proj_123')).state).toMatchObject({ tasks: { task_abc123: { status: 'completed' } } });
    expect(Object.keys(((await server.hub.read('tasks/default')).state as { tasks: object }).tasks)).toEqual(['task_default']);
    expect((await call(server.url, 'PATCH', '/api/tasks/task_default', json({ priority: 'high' }))).json).toMatchObject({ priority: 'high' });

    // Named explicitly, the project is taken as given (and a task missing there is not looked for elsewhere).
    expect((await call(server.url, 'PATCH', '/api/tasks/task_abc123?projectId=default', json({ status: 'pending' }))).status).toBe(404);

    expect((await call(server.url, 'DELETE', '/api/tasks/task_abc123')).status).toBe(200);
    expect(((await server.hub.read('tasks/proj_123')).state as { tasks: object }).tasks).toEqual({});
    expect((await call(server.url, 'PATCH', '/api/tasks/nowhere', json({ status: 'completed' }))).status).toBe(404);
  });
});

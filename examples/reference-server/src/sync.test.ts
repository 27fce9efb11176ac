import { createClient } from '@lockstep/client';
import { orchestrationDomain, tasksDomain, type LockstepError, type TransportState } from '@lockstep/core';
import { webSocketConnector, webSocketTransport } from '@lockstep/ws';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RawPeer, SseReader, TEST_TOKEN, call, startTestServer, until } from './testing.js';

const json = (body: unknown) => ({ body });

function wsClient(wsUrl: string, clientId?: string) {
  const client = createClient({ connect: webSocketConnector(wsUrl, { token: TEST_TOKEN }), ...(clientId !== undefined && { clientId }) });
  onTestFinished(() => client.close());
  return client;
}

describe('WebSocket and REST on one server', () => {
  it("see each other's changes, and an SSE reader sees both", async () => {
    const server = await startTestServer({ terminals: false });
    const board = wsClient(server.wsUrl).stream(tasksDomain, 'default');
    const sse = new SseReader(server.url, '/api/streams/tasks/default/events');
    await sse.opened();

    // REST → WebSocket (seed 002, example 2: an agent creates a task over the API).
    const created = await call(server.url, 'POST', '/api/tasks', json({ title: 'Refactor authentication service', priority: 'high' }));
    await board.waitFor(1);
    expect(board.getSnapshot().tasks[created.json.id]).toMatchObject({ title: 'Refactor authentication service', priority: 'high' });

    // WebSocket → REST (the UI completes it).
    await board.dispatch({ type: 'task.update', payload: { id: created.json.id, status: 'completed' } });
    const tasks = (await call(server.url, 'GET', '/api/tasks')).json.tasks;
    expect(tasks).toEqual([expect.objectContaining({ id: created.json.id, status: 'completed', completedAt: expect.any(Number) })]);

    await sse.waitFor((r) => r.events.length === 2, 'both events');
    expect(sse.events.map((e: { type: string; commandId: string }) => e.type)).toEqual(['task.created', 'task.updated']);
    expect(sse.events[0].commandId).toBe(created.headers['lockstep-command-id']);
  });

  it('a closed IDE stops counting: its leased workspace goes, and REST sees the totals drop (seed 000)', async () => {
    const server = await startTestServer({ terminals: false, hubOptions: { leaseGraceMs: 50 } });
    const ide = wsClient(server.wsUrl, 'ide-1');
    const orchestration = ide.stream(orchestrationDomain, 'default');
    await orchestration.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: '/work/api', desired: 1, lease: true } });
    await call(server.url, 'PUT', `/api/orchestration/workspaces/${encodeURIComponent('/work/web')}/desired`, json({ desired: 2 }));
    expect((await call(server.url, 'GET', '/api/orchestration')).json.global).toEqual({ desired: 3, running: 0 });
    await until(() => orchestration.getSnapshot().totals.desired === 3, 'the IDE to see the REST change');

    ide.close();
    await until(async () => (await call(server.url, 'GET', '/api/orchestration')).json.global.desired === 2, 'the lease to expire');
    expect((await call(server.url, 'GET', '/api/orchestration')).json.workspaces.map((w: { workspaceId: string }) => w.workspaceId)).toEqual(['/work/web']);
  });

  it('refuses WebSocket upgrades from foreign browser origins', async () => {
    const server = await startTestServer({ terminals: false });
    const foreign = webSocketTransport(server.wsUrl, { headers: { Origin: 'http://evil.example' } });
    const closed = await new Promise<TransportState>((resolve) => foreign.state.subscribe((state) => state.status === 'closed' && resolve(state)));
    expect(closed).toMatchObject({ status: 'closed', reason: expect.stringContaining('403') });

    // The dashboard's own origin is fine, under either loopback name.
    const port = new URL(server.url).port;
    for (const origin of [server.url, `http://localhost:${port}`]) {
      const peer = await RawPeer.connect(server.wsUrl, { Origin: origin });
      expect(await peer.request('ping', {})).toMatchObject({ time: expect.any(Number) });
    }
  });
});

describe('restarts', () => {
  it('keep every stream on the same data directory', async () => {
    const first = await startTestServer({ terminals: false });
    const dataDir = first.storeDescription.replace(/^file:/, '');
    await call(first.url, 'POST', '/api/tasks', json({ id: 't1', title: 'Durable' }));
    await call(first.url, 'POST', '/api/sessions/s1');
    await call(first.url, 'POST', '/api/sessions/s1/tasks/t1');
    await call(first.url, 'PUT', '/api/orchestration/workspaces/ws/desired', json({ desired: 5 }));
    await call(first.url, 'PUT', '/api/focus', json({ sessionId: 's1', focused: true }));
    const before = await Promise.all(['/api/tasks', '/api/sessions', '/api/orchestration', '/api/focus'].map((path) => call(first.url, 'GET', path)));
    await first.close();

    const second = await startTestServer({ terminals: false, dataDir });
    const after = await Promise.all(['/api/tasks', '/api/sessions', '/api/orchestration', '/api/focus'].map((path) => call(second.url, 'GET', path)));
    expect(after.map((answer) => answer.json)).toEqual(before.map((answer) => answer.json));
    expect(after[0]!.json.tasks[0]).toMatchObject({ id: 't1', sessionIds: ['s1'], sessionCount: 1 });
    // …and go on from there.
    expect((await call(second.url, 'PATCH', '/api/tasks/t1', json({ status: 'in_progress' }))).headers['lockstep-version']).toBe('4');
  });

  it('refuse a second server on a data directory in use', async () => {
    const first = await startTestServer({ terminals: false });
    const dataDir = first.storeDescription.replace(/^file:/, '');
    const refusal = await startTestServer({ terminals: false, dataDir }).catch((error: LockstepError) => error);
    expect(refusal).toBeInstanceOf(Error);
    expect((refusal as Error).message).toMatch(/locked/);
  });
});

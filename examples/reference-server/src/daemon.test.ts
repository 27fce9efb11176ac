import { isAlive } from '@lockstep/pty';
import type { LockstepError } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { AGENT_PROFILES } from './agentProfiles.js';
import { RawPeer, SseReader, call, startTestServer, until } from './testing.js';

/**
 * Seed 003's daemon over the reference server: sessions that run profiles, stopped and deleted over
 * REST, whose status only their programs set, a status view (JSON and Server-Sent Events) and /health.
 */

const json = (body: unknown) => ({ body });
const get = async (url: string, id: string) => (await call(url, 'GET', `/api/sessions/${id}`)).json;

/** A server with the agent profiles and a session running `agent-stay` (done, and staying until stopped). */
async function withStayingAgent(id = 'stay') {
  const server = await startTestServer({ profiles: AGENT_PROFILES });
  expect((await call(server.url, 'POST', `/api/sessions/${id}`, json({ profile: 'agent-stay', prompt: 'wait for me' }))).status).toBe(201);
  await until(() => server.terminals.get(id)?.read().toString().includes('[agent] staying until stopped') === true, 'the agent to be done and staying');
  await until(async () => (await get(server.url, id)).status === 'running', 'the session to be running');
  return server;
}

describe('stop, delete, get (seed 003)', () => {
  it('stop ends the program and keeps the session with its exit code and signal; delete removes it', async () => {
    const server = await withStayingAgent();
    const pid = server.terminals.get('stay')!.pid;
    const stopped = await call(server.url, 'POST', '/api/sessions/stay/stop');
    expect(stopped.status).toBe(200);
    // SIGHUP ends node: 128 + 1.
    expect(stopped.json).toMatchObject({
      id: 'stay',
      status: 'exited',
      exitCode: 129,
      signal: 'SIGHUP',
      reason: 'stopped',
      stopped: true,
      process: { state: 'exited', pid },
    });
    expect(isAlive(pid)).toBe(false);
    // The session stays, as the stop left it; stopping again changes nothing.
    expect(await get(server.url, 'stay')).toMatchObject({ status: 'exited', exitCode: 129, signal: 'SIGHUP', reason: 'stopped', profile: 'agent-stay' });
    const again = await call(server.url, 'POST', '/api/sessions/stay/stop');
    expect(again.json).toMatchObject({ status: 'exited', exitCode: 129, stopped: false });

    const deleted = await call(server.url, 'DELETE', '/api/sessions/stay');
    expect(deleted.json).toEqual({ id: 'stay', deleted: true });
    const gone = await call(server.url, 'GET', '/api/sessions/stay');
    expect(gone.status).toBe(404);
    expect(gone.json.error).toMatchObject({ code: 'COMMAND_REJECTED', details: { reason: 'session.notFound', id: 'stay' } });
    expect((await call(server.url, 'POST', '/api/sessions/stay/stop')).status).toBe(404);
  });

  it('stops with the signal asked for', async () => {
    const server = await withStayingAgent();
    const stopped = await call(server.url, 'POST', '/api/sessions/stay/stop', json({ signal: 'SIGTERM' }));
    expect(stopped.json).toMatchObject({ status: 'exited', exitCode: 143, signal: 'SIGTERM', reason: 'stopped' });
    expect((await call(server.url, 'POST', '/api/sessions/stay/stop', json({ signal: 'SIGSTOP' }))).status).toBe(400);
  });

  it('refuses a client that sets what only the program decides — REST and WebSocket — and lets it rename', async () => {
    const server = await withStayingAgent('live');
    const pid = server.terminals.get('live')!.pid;
    const patched = await call(server.url, 'PATCH', '/api/sessions/live', json({ status: 'exited', exitCode: 0 }));
    expect(patched.status).toBe(409);
    expect(patched.json.error).toMatchObject({
      code: 'COMMAND_REJECTED',
      details: { reason: 'session.statusOwnedByProcess', id: 'live', fields: ['status', 'exitCode'] },
    });
    const peer = await RawPeer.connect(server.wsUrl);
    const refused = await peer
      .request('command', { id: 'ws-exit', stream: 'tasks/default', type: 'session.update', payload: { id: 'live', status: 'exited' } })
      .then(
        () => undefined,
        (error: unknown) => error as LockstepError,
      );
    expect(refused).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'session.statusOwnedByProcess' } });
    // A session cannot be created in any state but starting either.
    const created = await call(server.url, 'POST', '/api/sessions/liar', json({ status: 'running' }));
    expect(created.json.error).toMatchObject({ details: { reason: 'session.statusOwnedByProcess', field: 'status' } });
    // Nothing changed: the program runs, the session says so.
    expect(isAlive(pid)).toBe(true);
    expect(await get(server.url, 'live')).toMatchObject({ status: 'running', process: { state: 'running', pid } });
    expect((await call(server.url, 'PATCH', '/api/sessions/live', json({ name: 'Renamed' }))).json).toMatchObject({ name: 'Renamed', status: 'running' });

    // Sessions of a project this server runs no programs for are the clients' to describe.
    await call(server.url, 'POST', '/api/sessions/elsewhere', json({ projectId: 'other' }));
    expect((await call(server.url, 'PATCH', '/api/sessions/elsewhere', json({ projectId: 'other', status: 'exited', exitCode: 3 }))).json).toMatchObject({
      status: 'exited',
      exitCode: 3,
    });
    const noProgram = await call(server.url, 'POST', '/api/sessions/elsewhere/stop', json({ projectId: 'other' }));
    expect(noProgram.status).toBe(409);
    expect(noProgram.json.error.details).toMatchObject({ reason: 'session.noProgram' });
  });
});

describe('daemon status and health (seed 003)', () => {
  it('answers /health to anyone with liveness and nothing else', async () => {
    const server = await startTestServer();
    const health = await call(server.url, 'GET', '/health', { anonymous: true });
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok' });
    expect((await call(server.url, 'HEAD', '/health', { anonymous: true })).status).toBe(200);
    expect((await call(server.url, 'POST', '/health', { anonymous: true })).status).toBe(405);
    // A host the server does not answer to is refused here too (DNS rebinding).
    expect((await call(server.url, 'GET', '/health', { anonymous: true, headers: { Host: 'evil.example:80' } })).status).toBe(403);
    // Everything else still needs the token.
    expect((await call(server.url, 'GET', '/api/status', { anonymous: true })).status).toBe(401);
    expect((await call(server.url, 'GET', '/api/profiles', { anonymous: true })).status).toBe(401);
    server.daemon.markClosing();
    const closing = await call(server.url, 'GET', '/health', { anonymous: true });
    expect([closing.status, closing.json]).toEqual([503, { status: 'closing' }]);
  });

  it('shows uptime, programs, totals and per-session metrics', async () => {
    const server = await withStayingAgent('stay');
    await call(server.url, 'POST', '/api/sessions/quick', json({ profile: 'agent', prompt: 'be quick' }));
    await until(async () => (await get(server.url, 'quick')).status === 'exited', 'the quick agent to exit');
    const status = (await call(server.url, 'GET', '/api/status')).json;
    expect(status).toMatchObject({
      status: 'running',
      projectId: 'default',
      terminals: true,
      activeSessions: 1,
      queuedSessions: 0,
      maxTerminals: 64,
      totals: { started: 2, exited: 1, failed: 0 },
    });
    expect(status.uptimeMs).toBeGreaterThanOrEqual(0);
    expect(status.startedAt).toBe(server.daemon.startedAt);
    const [quick, stay] = status.sessions;
    expect(quick).toMatchObject({ id: 'quick', profile: 'agent', status: 'exited', exitCode: 0, process: { state: 'exited', pid: expect.any(Number) } });
    expect(quick.process.endedAt).toBeGreaterThanOrEqual(quick.process.startedAt);
    expect(stay).toMatchObject({ id: 'stay', status: 'running', process: { state: 'running', pid: server.terminals.get('stay')!.pid } });
    expect(stay.process.outputBytes).toBe(server.terminals.get('stay')!.written);
    expect(stay.process.outputBytes).toBeGreaterThan(100);
    expect(stay.process.runtimeMs).toBeGreaterThanOrEqual(0);

    expect((await call(server.url, 'GET', '/api/profiles')).json).toEqual({
      profiles: [
        { name: 'shell', description: 'A login shell (/bin/sh)', acceptsPrompt: false, prompt: 'none', default: true },
        { name: 'agent', description: 'The scripted agent', acceptsPrompt: true, prompt: 'argv', default: false },
        { name: 'agent-stdin', description: expect.stringContaining('agent.mjs'), acceptsPrompt: true, prompt: 'stdin', default: false },
        { name: 'agent-stay', description: expect.stringContaining('--stay'), acceptsPrompt: true, prompt: 'argv', default: false },
      ],
      defaultProfile: 'shell',
      terminals: true,
    });
  });

  it('streams the status as Server-Sent Events whenever a program starts or ends', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const reader = new SseReader(server.url, '/api/status');
    await reader.waitFor((r) => r.messages.length >= 1, 'the first status');
    expect(reader.messages[0]).toMatchObject({ event: 'status', data: { activeSessions: 0, sessions: [] } });
    expect(reader.messages[0]).not.toHaveProperty('id');
    const statuses = () => reader.messages.filter((message) => message.event === 'status').map((message) => message.data);

    await call(server.url, 'POST', '/api/sessions/s1', json({ profile: 'agent-stay', prompt: 'watch me' }));
    await reader.waitFor(
      () => statuses().some((status) => status.activeSessions === 1 && status.sessions[0]?.status === 'running'),
      'a status with s1 running',
    );
    await call(server.url, 'POST', '/api/sessions/s1/stop');
    await reader.waitFor(
      () => statuses().some((status) => status.totals.exited === 1 && status.sessions[0]?.exitCode === 129 && status.activeSessions === 0),
      'a status with s1 stopped',
    );
    expect(statuses().at(-1)).toMatchObject({ totals: { started: 1, exited: 1, failed: 0 }, sessions: [{ id: 's1', status: 'exited', signal: 'SIGHUP' }] });
    // A stream without the token is refused before it starts.
    const anonymous = new SseReader(server.url, '/api/status', {}, { anonymous: true });
    await anonymous.opened();
    expect(anonymous.status).toBe(401);
  });

  it('says there is nothing to run without terminals', async () => {
    const server = await startTestServer({ terminals: false });
    expect((await call(server.url, 'GET', '/api/profiles')).json).toEqual({ profiles: [], defaultProfile: null, terminals: false });
    expect((await call(server.url, 'GET', '/api/status')).json).toMatchObject({
      terminals: false,
      activeSessions: 0,
      totals: { started: 0, exited: 0, failed: 0 },
    });
    await call(server.url, 'POST', '/api/sessions/s1');
    expect((await call(server.url, 'GET', '/api/sessions/s1')).json).not.toHaveProperty('process');
    expect((await call(server.url, 'POST', '/api/sessions/s1/stop')).json.error.details).toMatchObject({ reason: 'session.noProgram' });
  });
});

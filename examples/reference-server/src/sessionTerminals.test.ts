import { isAlive } from '@lockstep/pty';
import { describe, expect, it } from 'vitest';
import { RawPeer, call, startTestServer, until } from './testing.js';

const json = (body: unknown) => ({ body });
const sessionOf = async (url: string, id: string) =>
  ((await call(url, 'GET', '/api/sessions')).json.sessions as Array<{ id: string; status: string; exitCode?: number; kind: string }>).find((s) => s.id === id);

describe('a terminal per session', () => {
  it('spawns a shell when a session is created, streams it over WebSocket, and kills it when the session is deleted', async () => {
    const server = await startTestServer();
    const created = await call(server.url, 'POST', '/api/sessions/sess_1', json({ name: 'Shell one' }));
    expect(created.status).toBe(201);
    await until(() => server.terminals.get('sess_1')?.running === true, 'the terminal to start');
    const terminal = server.terminals.get('sess_1')!;
    expect(terminal.file).toBe('/bin/sh');
    // The terminal's start is recorded in the session, so every client sees it running.
    await until(async () => (await sessionOf(server.url, 'sess_1'))?.status === 'running', 'the session to be running');
    expect(await sessionOf(server.url, 'sess_1')).toMatchObject({ name: 'Shell one', kind: 'agent' });

    // What the dashboard does: attach, type a command, read its output.
    const peer = await RawPeer.connect(server.wsUrl);
    expect(await peer.request('terminal.attach', { terminalId: 'sess_1' })).toMatchObject({ terminalId: 'sess_1', runId: terminal.runId });
    await peer.request('terminal.input', { terminalId: 'sess_1', data: 'echo lockstep-$((6*7))\n' });
    await until(() => peer.terminalText('sess_1').includes('lockstep-42'), 'the command output');

    const deleted = await call(server.url, 'DELETE', '/api/sessions/sess_1');
    expect(deleted.json).toEqual({ id: 'sess_1', deleted: true });
    await until(() => server.terminals.get('sess_1') === undefined, 'the terminal to be removed');
    await until(() => !isAlive(terminal.pid), 'the shell to be gone');
    await until(() => peer.notifications.some((n) => n.method === 'terminal.exit' && n.params.terminalId === 'sess_1'), 'the viewer to see the exit');
    expect(await sessionOf(server.url, 'sess_1')).toBeUndefined();
    // Recording the exit in a deleted session is expected to be refused, and not reported.
    expect(server.lines.filter((line) => line.startsWith('error'))).toEqual([]);
  });

  it('gives the sessions already in the store their terminals at start, and records their exits at shutdown', async () => {
    const first = await startTestServer({ terminals: false });
    const dataDir = first.storeDescription.replace(/^file:/, '');
    await call(first.url, 'POST', '/api/sessions/s1');
    await call(first.url, 'POST', '/api/sessions/s2');
    await first.close();

    const second = await startTestServer({ dataDir });
    // startReferenceServer resolves once the sessions present have their terminals.
    const pids = ['s1', 's2'].map((id) => second.terminals.get(id)?.pid);
    expect(pids.every((pid) => pid !== undefined && isAlive(pid))).toBe(true);
    expect((await sessionOf(second.url, 's1'))?.status).toBe('running');
    await second.close();
    expect(pids.some((pid) => isAlive(pid!))).toBe(false);

    const third = await startTestServer({ terminals: false, dataDir });
    // SIGHUP ends a shell: 128 + 1.
    expect(await sessionOf(third.url, 's1')).toMatchObject({ status: 'exited', exitCode: 129 });
    expect(await sessionOf(third.url, 's2')).toMatchObject({ status: 'exited', exitCode: 129 });
  });

  it('never brings back a session deleted while its terminal was starting', async () => {
    const server = await startTestServer();
    // The interleaving under test, made certain: the session is deleted right as its terminal spawns,
    // so the terminal's start finds no session (and records one).
    const spawn = server.terminals.spawn.bind(server.terminals);
    server.terminals.spawn = async (options) => {
      await server.hub.execute({ id: `delete-${options.id}`, stream: 'tasks/default', type: 'session.delete', payload: { id: options.id } });
      return spawn(options);
    };
    await call(server.url, 'POST', '/api/sessions/quick');
    await until(async () => (await server.hub.store.read('tasks/default', 1, 10)).length >= 4, 'the session to be re-created and deleted again');
    const log = await server.hub.store.read('tasks/default', 1, 10);
    expect(log.map((event) => [event.type, event.commandId?.replace(/:[^:]+:start$/, ':…:start')])).toEqual([
      ['session.created', expect.stringMatching(/^rest:/)],
      ['session.deleted', 'delete-quick'],
      ['session.created', 'pty:quick:…:start'],
      ['session.deleted', expect.stringMatching(/^ghost:pty:quick:/)],
    ]);
    await until(() => server.terminals.list().length === 0, 'the terminal to be removed');
    expect((await call(server.url, 'GET', '/api/sessions')).json.sessions).toEqual([]);
  });

  it('gives no terminal to a session whose id cannot name one, and says so', async () => {
    const server = await startTestServer();
    await call(server.url, 'POST', '/api/sessions/-dash');
    await call(server.url, 'POST', '/api/sessions/fine');
    await until(() => server.terminals.get('fine')?.running === true, 'the valid session\'s terminal');
    expect(server.terminals.get('-dash')).toBeUndefined();
    expect(server.lines).toContainEqual(expect.stringMatching(/^error starting the terminal of session -dash: .*cannot name a terminal/));
  });
});

import { builtInDomains, type Session, type TasksState } from '@lockstep/core';
import { createTerminalExtension, isAlive, type TerminalExtension } from '@lockstep/pty';
import { Hub } from '@lockstep/server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { SessionTerminals, type ShellCommand } from './sessionTerminals.js';
import { isGoneSessionExit } from './shell.js';
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

/** A hub with the terminal extension and SessionTerminals on `tasks/default`, closed when the test ends. */
async function sessionsHub(options: { maxTerminals: number; shell?: ShellCommand }) {
  const errors: Array<{ error: unknown; context: string }> = [];
  // As the server does: recording the exit of a deleted session's terminal is refused, as expected.
  const onError = (error: unknown, context: string) => {
    if (!isGoneSessionExit(error, context)) errors.push({ error, context });
  };
  let hub: Hub | undefined;
  const extension: TerminalExtension = createTerminalExtension({ hub: () => hub!, maxTerminals: options.maxTerminals, onError });
  hub = new Hub({ domains: builtInDomains, extensions: [extension], onError });
  const started = hub;
  const sessions = await SessionTerminals.start({
    hub: started,
    terminals: extension.terminals,
    project: 'default',
    shell: options.shell ?? { file: '/bin/sh', args: [] },
    onError,
  });
  const pids = new Set<number>();
  extension.terminals.onSpawn((terminal) => pids.add(terminal.pid));
  onTestFinished(async () => {
    await sessions.close();
    await started.close();
    await until(() => [...pids].every((pid) => !isAlive(pid)), 'every shell to end');
  });
  let commands = 0;
  const execute = (type: string, payload: unknown) => started.execute({ id: `test-${commands++}`, stream: 'tasks/default', type, payload });
  const session = async (id: string): Promise<Session | undefined> => ((await started.read('tasks/default')).state as TasksState).sessions[id];
  return { hub: started, terminals: extension.terminals, sessions, errors, execute, session };
}

describe('terminal slots for sessions', () => {
  it('queues the sessions past maxTerminals with a reason, starts the next when a shell ends, and drops a deleted one from the line', async () => {
    const test = await sessionsHub({ maxTerminals: 2 });
    for (const id of ['s1', 's2', 's3', 's4']) await test.execute('session.create', { id });
    await test.sessions.settled();
    await until(async () => (await test.session('s1'))?.status === 'running' && (await test.session('s2'))?.status === 'running', 's1 and s2 to run');

    // s3 and s4 wait, in order, and say why; the domain shows them `starting`.
    expect(test.sessions.status('s3')).toMatchObject({ state: 'waiting', reason: 'waitingForTerminalSlot', position: 1 });
    expect(test.sessions.status('s4')).toMatchObject({ state: 'waiting', reason: 'waitingForTerminalSlot', position: 2 });
    expect((await test.session('s3'))?.status).toBe('starting');
    expect(test.terminals.waiting().map((waiting) => waiting.id)).toEqual(['s3', 's4']);
    expect(test.terminals.list().map((terminal) => terminal.id)).toEqual(['s1', 's2']);

    // s1's shell ends: its session is exited, and s3 gets the slot.
    test.sessions.get('s1')!.write('exit 5\n');
    await until(async () => (await test.session('s3'))?.status === 'running', 's3 to run');
    expect(await test.session('s1')).toMatchObject({ status: 'exited', exitCode: 5 });
    expect(test.sessions.status('s3')).toMatchObject({ state: 'started' });
    expect(test.sessions.get('s3')?.running).toBe(true);
    expect(test.sessions.status('s4')).toMatchObject({ state: 'waiting', position: 1 });

    // Deleting a waiting session takes it out of the line: freeing a slot later starts nothing for it.
    await test.execute('session.delete', { id: 's4' });
    await until(() => test.terminals.waiting().length === 0, 's4 to leave the line');
    expect(test.sessions.status('s4')).toBeUndefined();
    await test.execute('session.delete', { id: 's2' });
    await until(() => test.terminals.get('s2') === undefined, 's2 to be removed');
    await test.sessions.settled();
    expect(test.terminals.list().map((terminal) => terminal.id)).toEqual(['s3']);
    expect(test.terminals.get('s4')).toBeUndefined();
    expect(test.errors).toEqual([]);
  });

  it('starts a waiting session when a running one is deleted', async () => {
    const test = await sessionsHub({ maxTerminals: 1 });
    await test.execute('session.create', { id: 'first' });
    await test.execute('session.create', { id: 'second' });
    await test.sessions.settled();
    expect(test.sessions.status('second')).toMatchObject({ state: 'waiting', position: 1 });
    await test.execute('session.delete', { id: 'first' });
    await until(async () => (await test.session('second'))?.status === 'running', 'the second session to run');
    expect(test.terminals.list().map((terminal) => terminal.id)).toEqual(['second']);
  });

  it('marks a session failed, not starting for ever, when its terminal cannot start, and says why', async () => {
    const test = await sessionsHub({ maxTerminals: 2, shell: { file: '/nonexistent/shell', args: [] } });
    await test.execute('session.create', { id: 'broken' });
    await test.execute('session.create', { id: '-dash' });
    await until(async () => (await test.session('broken'))?.status === 'failed' && (await test.session('-dash'))?.status === 'failed', 'both to be failed');
    expect(test.sessions.status('broken')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/nonexistent/) });
    expect(test.sessions.status('-dash')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/cannot name a terminal/) });
    expect(test.errors.map((entry) => entry.context).sort()).toEqual(['starting the terminal of session -dash', 'starting the terminal of session broken']);
    expect(test.terminals.list()).toEqual([]);
  });
});

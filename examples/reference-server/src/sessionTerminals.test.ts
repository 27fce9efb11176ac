import { builtInDomains, type Session, type TasksState } from '@lockstep/core';
import { createTerminalExtension, isAlive, type SpawnPolicy, type TerminalExtension } from '@lockstep/pty';
import { Hub } from '@lockstep/server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { Profiles, type ProfileConfig } from './profiles.js';
import { SessionTerminals, type ShellCommand } from './sessionTerminals.js';
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

  it('records nothing when it restarts: running sessions get their terminals back, ended ones stay ended', async () => {
    const first = await startTestServer();
    const dataDir = first.storeDescription.replace(/^file:/, '');
    for (const id of ['s1', 's2', 's3']) await call(first.url, 'POST', `/api/sessions/${id}`);
    await until(
      async () => (await Promise.all(['s1', 's2', 's3'].map((id) => sessionOf(first.url, id)))).every((s) => s?.status === 'running'),
      'three running shells',
    );
    // s3's program ends on its own: that is recorded, once.
    first.terminals.get('s3')!.write('exit 7\n');
    await until(async () => (await sessionOf(first.url, 's3'))?.status === 'exited', 's3 to exit');
    const log = async (server: { hub: { store: { read(stream: string, from: number, max: number): Promise<Array<{ type: string }>> } } }) =>
      server.hub.store.read('tasks/default', 1, 1_000);
    const beforeShutdown = (await log(first)).length;
    const oldPids = ['s1', 's2'].map((id) => first.terminals.get(id)!.pid);
    await first.close();
    expect(oldPids.some((pid) => isAlive(pid))).toBe(false);

    const second = await startTestServer({ dataDir });
    // The shutdown recorded nothing, and neither did the respawn: the sessions still say running.
    expect((await log(second)).length).toBe(beforeShutdown);
    const pids = ['s1', 's2'].map((id) => second.terminals.get(id)?.pid);
    expect(pids.every((pid) => pid !== undefined && isAlive(pid) && !oldPids.includes(pid))).toBe(true);
    expect(await sessionOf(second.url, 's1')).toMatchObject({ status: 'running' });
    // The ended session keeps its exit and gets no new program.
    expect(await sessionOf(second.url, 's3')).toMatchObject({ status: 'exited', exitCode: 7 });
    expect(second.terminals.get('s3')).toBeUndefined();
    // The new shells are live: they run commands.
    second.terminals.get('s1')!.write('echo again-$((40+2))\n');
    await until(() => second.terminals.get('s1')!.read().toString().includes('again-42'), 'the respawned shell to answer');
    await second.close();
    expect(pids.some((pid) => isAlive(pid!))).toBe(false);

    // A third start on the same store: still nothing new.
    const third = await startTestServer({ dataDir });
    expect((await log(third)).length).toBe(beforeShutdown);
  });

  it('never brings back a session deleted while its terminal was starting', async () => {
    const server = await startTestServer();
    // The interleaving under test, made certain: the session is deleted right as its terminal spawns.
    const spawn = server.terminals.spawn.bind(server.terminals);
    server.terminals.spawn = async (options, placement) => {
      await server.hub.execute({ id: `delete-${options.id}`, stream: 'tasks/default', type: 'session.delete', payload: { id: options.id } });
      return spawn(options, placement);
    };
    await call(server.url, 'POST', '/api/sessions/quick');
    await until(() => server.terminals.list().length === 0 && server.terminals.waiting().length === 0, 'the terminal to be removed');
    await server.daemon.sessions!.settled();
    const log = await server.hub.store.read('tasks/default', 1, 10);
    expect(log.map((event) => [event.type, event.commandId])).toEqual([
      ['session.created', expect.stringMatching(/^rest:/)],
      ['session.deleted', 'delete-quick'],
    ]);
    expect((await call(server.url, 'GET', '/api/sessions')).json.sessions).toEqual([]);
    expect(server.lines.filter((line) => line.startsWith('error'))).toEqual([]);
  });

  it('gives no terminal to a session whose id cannot name one, and says so', async () => {
    const server = await startTestServer();
    await call(server.url, 'POST', '/api/sessions/-dash');
    await call(server.url, 'POST', '/api/sessions/fine');
    await until(() => server.terminals.get('fine')?.running === true, "the valid session's terminal");
    expect(server.terminals.get('-dash')).toBeUndefined();
    expect(server.lines).toContainEqual(expect.stringMatching(/^error starting the terminal of session -dash: .*cannot name a terminal/));
  });
});

/** A hub with the terminal extension and SessionTerminals on `tasks/default`, closed when the test ends. */
async function sessionsHub(options: { maxTerminals: number; shell?: ShellCommand; profiles?: Record<string, ProfileConfig>; policy?: SpawnPolicy }) {
  const errors: Array<{ error: unknown; context: string }> = [];
  const onError = (error: unknown, context: string) => errors.push({ error, context });
  let hub: Hub | undefined;
  const extension: TerminalExtension = createTerminalExtension({
    hub: () => hub!,
    maxTerminals: options.maxTerminals,
    recordSessions: false,
    ...(options.policy && { policy: options.policy }),
    onError,
  });
  hub = new Hub({ domains: builtInDomains, services: [extension], onError });
  const started = hub;
  const profiles = Profiles.create({
    shell: options.shell ?? { file: '/bin/sh', args: [] },
    cwd: process.cwd(),
    ...(options.profiles && { profiles: options.profiles }),
  });
  const sessions = await SessionTerminals.start({ hub: started, terminals: extension.terminals, project: 'default', profiles, onError });
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

  it('stops a waiting session: it leaves the line and is recorded exited, stopped, with no exit code', async () => {
    const test = await sessionsHub({ maxTerminals: 1 });
    await test.execute('session.create', { id: 'first' });
    await test.execute('session.create', { id: 'second' });
    await test.sessions.settled();
    expect(test.sessions.status('second')).toMatchObject({ state: 'waiting', position: 1 });
    expect(await test.sessions.stop('second')).toBe('stopped');
    expect(test.terminals.waiting()).toEqual([]);
    expect(await test.session('second')).toMatchObject({ status: 'exited', reason: 'stopped' });
    expect(await test.session('second')).not.toHaveProperty('exitCode');
    // Its slot never comes: freeing one starts nothing for it.
    await test.execute('session.delete', { id: 'first' });
    await until(() => test.terminals.list().length === 0, 'the first terminal to go');
    await test.sessions.settled();
    expect(test.terminals.get('second')).toBeUndefined();
    expect(await test.sessions.stop('second')).toBe('notRunning');
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
    // The spawn policy refuses the shell; a profile the server does not have (any more) cannot run.
    const test = await sessionsHub({ maxTerminals: 2, policy: { executables: ['/bin/true'] } });
    await test.execute('session.create', { id: 'broken' });
    await test.execute('session.create', { id: '-dash' });
    await test.execute('session.create', { id: 'gone', profile: 'retired' });
    const failed = async (id: string) => (await test.session(id))?.status === 'failed';
    await until(async () => (await failed('broken')) && (await failed('-dash')) && (await failed('gone')), 'all three to be failed');
    expect(test.sessions.status('broken')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/not allowed by the spawn policy/) });
    expect(await test.session('broken')).toMatchObject({ status: 'failed', reason: expect.stringMatching(/not allowed by the spawn policy/) });
    expect(await test.session('-dash')).toMatchObject({ reason: expect.stringMatching(/cannot name a terminal/) });
    expect(await test.session('gone')).toMatchObject({ reason: expect.stringMatching(/no profile "retired"/) });
    expect(test.errors.map((entry) => entry.context).sort()).toEqual([
      'starting the terminal of session -dash',
      'starting the terminal of session broken',
      'starting the terminal of session gone',
    ]);
    expect(test.terminals.list()).toEqual([]);
    expect(test.sessions.totals).toEqual({ started: 0, exited: 0, failed: 3 });
  });
});

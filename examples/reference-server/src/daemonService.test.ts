import { createClient, type LockstepClient } from '@lockstep/client';
import { ErrorCodes, LockstepError, type ParamsOutput } from '@lockstep/core';
import type { Identity } from '@lockstep/server';
import { webSocketConnector } from '@lockstep/ws';
import { describe, expect, expectTypeOf, it, onTestFinished } from 'vitest';
import { AGENT_PROFILES } from './agentProfiles.js';
import { daemonService, type SessionStatus } from './daemonService.js';
import { TEST_TOKEN, call, startTestServer, until } from './testing.js';

/**
 * Seed 003 over the typed `daemon` service: the web UI's requests as methods, called over a real
 * WebSocket with `@lockstep/client` against the real server, its sessions running the scripted agent
 * in real terminals; the daemon's pushes (output chunks, tool calls, the end) as notifications.
 */

/** A client of `wsUrl` (with the test token unless another is given), ready for calls; closed when the test ends. */
async function connect(wsUrl: string, token: string | undefined = TEST_TOKEN): Promise<LockstepClient> {
  const client = createClient({ connect: webSocketConnector(wsUrl, token === undefined ? {} : { token }), backoff: { initialMs: 20, maxMs: 200 } });
  onTestFinished(() => client.close());
  await until(() => client.status.status === 'online', 'the client to be online');
  return client;
}

type Pushed =
  | { kind: 'output'; params: ParamsOutput<typeof daemonService.output> }
  | { kind: 'toolCallStart'; params: ParamsOutput<typeof daemonService.toolCallStart> }
  | { kind: 'toolCallResult'; params: ParamsOutput<typeof daemonService.toolCallResult> }
  | { kind: 'sessionEnded'; params: ParamsOutput<typeof daemonService.sessionEnded> }
  | { kind: 'unwatched'; params: ParamsOutput<typeof daemonService.unwatched> };

/** Every daemon notification the client receives, in order. */
function record(client: LockstepClient) {
  const log: Pushed[] = [];
  client.on(daemonService.output, (params) => log.push({ kind: 'output', params }));
  client.on(daemonService.toolCallStart, (params) => log.push({ kind: 'toolCallStart', params }));
  client.on(daemonService.toolCallResult, (params) => log.push({ kind: 'toolCallResult', params }));
  client.on(daemonService.sessionEnded, (params) => log.push({ kind: 'sessionEnded', params }));
  client.on(daemonService.unwatched, (params) => log.push({ kind: 'unwatched', params }));
  const of = (sessionId: string) => log.filter((entry) => entry.params.sessionId === sessionId);
  return {
    log,
    of,
    text: (sessionId: string) =>
      of(sessionId)
        .flatMap((entry) => (entry.kind === 'output' ? [entry.params.chunk] : []))
        .join(''),
    ended: (sessionId: string) => of(sessionId).find((entry) => entry.kind === 'sessionEnded')?.params,
  };
}

/** The refusal a call ended with. */
async function refusal(call: Promise<unknown>): Promise<LockstepError> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(LockstepError);
  return error as LockstepError;
}

const tasksVersion = async (server: { hub: { read(stream: string): Promise<{ version: number }> } }) => (await server.hub.read('tasks/default')).version;

describe('seed 003 on typed methods', () => {
  it('spawns an agent session, streams its output and tool calls, ends it, and reports the daemon', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const client = await connect(server.wsUrl);
    expect(client.supports(daemonService)).toBe(true);
    const pushed = record(client);

    // daemon_status, before anything runs.
    const idle = await client.call(daemonService.daemonStatus);
    expectTypeOf(idle.activeSessions).toEqualTypeOf<number>();
    expect(idle).toMatchObject({ status: 'running', projectId: 'default', terminals: true, activeSessions: 0, queuedSessions: 0, defaultProfile: 'shell' });
    expect(idle.maxTerminals).toBeGreaterThan(0);
    expect(idle.profiles.map((profile) => profile.name)).toEqual(['shell', 'agent', 'agent-stdin', 'agent-stay']);
    expect(idle.profiles.find((profile) => profile.name === 'agent')).toMatchObject({ acceptsPrompt: true, prompt: 'argv', default: false });

    // spawn_session with streamResponse: the answer, then the program's output from its first byte.
    const prompt = 'Summarise the README';
    const spawned = await client.call(daemonService.spawnSession, { profile: 'agent', prompt, name: 'summariser', watch: true });
    expectTypeOf(spawned).toEqualTypeOf<SessionStatus>();
    expect(spawned).toMatchObject({ name: 'summariser', kind: 'agent', profile: 'agent' });
    const id = spawned.id;
    expect(id).toMatch(/^sess_/);

    await until(() => pushed.ended(id) !== undefined, 'the session to end');
    expect(pushed.ended(id)).toEqual({ sessionId: id, status: 'exited', exitCode: 0 });
    const text = pushed.text(id);
    expect(text).toContain(`[agent] prompt from argv: ${JSON.stringify(prompt)}`);
    expect(text).toContain('Done: 3 words read, 3 tools called.');
    expect(text).toContain('[agent] done (exit 0)');

    // The chunks cover the output from byte 0, each starting where the one before ended.
    const chunks = pushed.of(id).flatMap((entry) => (entry.kind === 'output' ? [entry.params] : []));
    expect(chunks[0]!.offset).toBe(0);
    for (let index = 1; index < chunks.length; index++) expect(chunks[index]!.offset).toBe(chunks[index - 1]!.end);
    expect(chunks.every((chunk) => chunk.truncated === undefined)).toBe(true);
    expect(chunks.at(-1)!.end).toBe(Buffer.byteLength(text));

    // tool_call_start / tool_call_result, parsed from the agent's lines, in order, after the text that announced them.
    const calls = pushed.of(id).filter((entry) => entry.kind === 'toolCallStart' || entry.kind === 'toolCallResult');
    expect(calls.map((entry) => entry.params)).toEqual([
      { sessionId: id, toolName: 'list_files', input: { path: '.' } },
      { sessionId: id, toolName: 'list_files', result: { files: 3 } },
      { sessionId: id, toolName: 'read_file', input: { path: 'README.md' } },
      { sessionId: id, toolName: 'read_file', result: { lines: 42 } },
      { sessionId: id, toolName: 'search', input: { query: 'Summarise' } },
      { sessionId: id, toolName: 'search', result: { matches: 3 } },
    ]);
    // task_completed comes last: after the last chunk.
    expect(pushed.of(id).at(-1)!.kind).toBe('sessionEnded');

    // session_status: what the server recorded, with the program.
    const status = await client.call(daemonService.sessionStatus, { sessionId: id });
    expect(status).toMatchObject({
      id,
      status: 'exited',
      exitCode: 0,
      profile: 'agent',
      process: { state: 'exited', profile: 'agent', outputBytes: Buffer.byteLength(text) },
    });
    // The same session over REST.
    expect((await call(server.url, 'GET', `/api/sessions/${id}`)).json).toMatchObject({ id, status: 'exited', exitCode: 0, profile: 'agent', prompt });

    // Watching again from an offset replays from there, then the end at once.
    const middle = chunks[Math.floor(chunks.length / 2)]!;
    const before = pushed.of(id).length;
    const again = await client.call(daemonService.watch, { sessionId: id, since: middle.offset });
    expect(again).toMatchObject({ sessionId: id, offset: middle.offset, session: { status: 'exited' } });
    await until(
      () =>
        pushed
          .of(id)
          .slice(before)
          .some((entry) => entry.kind === 'sessionEnded'),
      'the replay to end',
    );
    const replay = pushed.of(id).slice(before);
    expect(replay[0]).toMatchObject({ kind: 'output', params: { offset: middle.offset } });
    expect(replay.flatMap((entry) => (entry.kind === 'output' ? [entry.params.chunk] : [])).join('')).toBe(
      Buffer.from(text).subarray(middle.offset).toString('utf8'),
    );

    const after = await client.call(daemonService.daemonStatus);
    expect(after).toMatchObject({ activeSessions: 0, queuedSessions: 0, totals: { started: 1, exited: 1, failed: 0 } });
    expect(after.uptimeMs).toBeGreaterThanOrEqual(idle.uptimeMs);
    expect(server.lines.filter((line) => line.startsWith('error'))).toEqual([]);
  });

  it('executes a task (an existing one, or one it creates) and stops its session', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const client = await connect(server.wsUrl);
    const pushed = record(client);
    const created = await call(server.url, 'POST', '/api/tasks', { body: { title: 'Review the API', prompt: 'Review the API for breaking changes' } });
    const taskId = created.json.id as string;

    // execute_task: the dashboard's "Start session" — named after the task, its prompt, linked, in progress.
    const started = await client.call(daemonService.executeTask, { taskId, profile: 'agent-stay', watch: true });
    expect(started).toMatchObject({ taskId, session: { name: 'Review the API', profile: 'agent-stay' } });
    const { sessionId } = started;
    await until(() => pushed.text(sessionId).includes('[agent] staying until stopped'), 'the agent to stay');
    expect(pushed.text(sessionId)).toContain('prompt from argv: "Review the API for breaking changes"');
    const task = (await call(server.url, 'GET', '/api/tasks')).json.tasks.find((entry: { id: string }) => entry.id === taskId);
    expect(task).toMatchObject({ status: 'in_progress', sessionIds: [sessionId] });
    await until(async () => (await client.call(daemonService.sessionStatus, { sessionId })).status === 'running', 'the session to be running');
    expect(await client.call(daemonService.daemonStatus)).toMatchObject({ activeSessions: 1 });

    // stop_session: the exit recorded (SIGTERM: 128 + 15), the watcher told after the last output.
    const stopped = await client.call(daemonService.stopSession, { sessionId, signal: 'SIGTERM' });
    expect(stopped).toMatchObject({ stopped: true, session: { status: 'exited', exitCode: 143, signal: 'SIGTERM', reason: 'stopped' } });
    await until(() => pushed.ended(sessionId) !== undefined, 'the watcher to hear the end');
    expect(pushed.ended(sessionId)).toEqual({ sessionId, status: 'exited', exitCode: 143, signal: 'SIGTERM', reason: 'stopped' });
    // Stopping again changes nothing.
    expect(await client.call(daemonService.stopSession, { sessionId })).toMatchObject({ stopped: false, session: { exitCode: 143 } });
    expect(await client.call(daemonService.daemonStatus)).toMatchObject({ activeSessions: 0, totals: { started: 1, exited: 1 } });

    // execute_task with a new task (the seed sends the task itself): created, then started on, with the default profile.
    const fresh = await client.call(daemonService.executeTask, { task: { title: 'Say hello', priority: 'high' } });
    const board = (await call(server.url, 'GET', '/api/tasks')).json.tasks as Array<{
      id: string;
      title: string;
      status: string;
      priority: string;
      sessionIds: string[];
    }>;
    expect(board.find((entry) => entry.id === fresh.taskId)).toMatchObject({
      title: 'Say hello',
      priority: 'high',
      status: 'in_progress',
      sessionIds: [fresh.sessionId],
    });
    expect(fresh.session).toMatchObject({ name: 'Say hello', profile: 'shell' });

    // A watched session deleted (here over REST) ends its watch too.
    await client.call(daemonService.watch, { sessionId: fresh.sessionId });
    expect((await call(server.url, 'DELETE', `/api/sessions/${fresh.sessionId}`)).json).toEqual({ id: fresh.sessionId, deleted: true });
    await until(() => pushed.ended(fresh.sessionId) !== undefined, 'the watcher to hear of the deletion');
    expect(pushed.ended(fresh.sessionId)).toEqual({ sessionId: fresh.sessionId, status: 'deleted' });
    expect(server.lines.filter((line) => line.startsWith('error'))).toEqual([]);
  });

  it('on a server without terminals: sessions are records, with no program to watch or stop', async () => {
    const server = await startTestServer({ terminals: false });
    const client = await connect(server.wsUrl);
    expect(await client.call(daemonService.daemonStatus)).toMatchObject({ terminals: false, activeSessions: 0, profiles: [], defaultProfile: null });
    const session = await client.call(daemonService.spawnSession, { sessionId: 'record-1' });
    expect(session).toMatchObject({ id: 'record-1', status: 'starting', process: { state: 'none' } });
    for (const refused of [client.call(daemonService.watch, { sessionId: 'record-1' }), client.call(daemonService.stopSession, { sessionId: 'record-1' })]) {
      expect(await refusal(refused)).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'session.noProgram' } });
    }
    // Asked to watch what it spawns, it refuses before creating anything.
    expect(await refusal(client.call(daemonService.spawnSession, { sessionId: 'record-2', watch: true }))).toMatchObject({
      data: { reason: 'session.noProgram' },
    });
    expect((await call(server.url, 'GET', '/api/sessions')).json.sessions.map((entry: { id: string }) => entry.id)).toEqual(['record-1']);
  });

  it('refuses bad params with INVALID_PARAMS and unknown sessions with session.notFound, changing nothing', async () => {
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const client = await connect(server.wsUrl);
    const version = await tasksVersion(server);

    // Checked by the service's schemas (the hub answers before any handler runs)…
    const notAString = await refusal(client.call(daemonService.spawnSession, { prompt: 42 } as never));
    expect(notAString).toMatchObject({ code: 'INVALID_PARAMS', data: { issues: [expect.objectContaining({ path: ['prompt'] })] } });
    const unknownField = await refusal(client.call(daemonService.spawnSession, { program: '/bin/rm' } as never));
    expect(unknownField.code).toBe('INVALID_PARAMS');
    const badId = await refusal(client.call(daemonService.spawnSession, { sessionId: '-dash' }));
    expect(badId.code).toBe('INVALID_PARAMS');
    const both = await refusal(client.call(daemonService.executeTask, { taskId: 'task_1', task: { title: 'x' } }));
    expect(both.code).toBe('INVALID_PARAMS');
    // …and by the server's profiles, as for REST and the dashboard.
    const unknownProfile = await refusal(client.call(daemonService.spawnSession, { profile: 'rm-rf' }));
    expect(unknownProfile).toMatchObject({
      code: 'INVALID_PARAMS',
      data: { reason: 'profile.unknown', profiles: ['shell', 'agent', 'agent-stdin', 'agent-stay'] },
    });
    const noPrompt = await refusal(client.call(daemonService.spawnSession, { profile: 'shell', prompt: 'ls' }));
    expect(noPrompt).toMatchObject({ code: 'INVALID_PARAMS', data: { reason: 'profile.takesNoPrompt' } });
    const unknownTaskProfile = await refusal(client.call(daemonService.executeTask, { task: { title: 'never created' }, profile: 'nope' }));
    expect(unknownTaskProfile).toMatchObject({ code: 'INVALID_PARAMS', data: { reason: 'profile.unknown' } });

    // Unknown sessions and tasks: the tasks domain's own refusal.
    for (const refused of [
      client.call(daemonService.sessionStatus, { sessionId: 'nope' }),
      client.call(daemonService.stopSession, { sessionId: 'nope' }),
      client.call(daemonService.watch, { sessionId: 'nope' }),
    ]) {
      expect(await refusal(refused)).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'session.notFound', id: 'nope' } });
    }
    expect(await refusal(client.call(daemonService.executeTask, { taskId: 'nope' }))).toMatchObject({
      code: 'COMMAND_REJECTED',
      data: { reason: 'task.notFound' },
    });
    expect(await client.call(daemonService.unwatch, { sessionId: 'nope' })).toEqual({ watching: false });

    // Nothing was recorded (not even the task of the refused `executeTask`) and nothing runs.
    expect(await tasksVersion(server)).toBe(version);
    expect((await call(server.url, 'GET', '/api/tasks')).json.tasks).toEqual([]);
    expect((await call(server.url, 'GET', '/api/sessions')).json.sessions).toEqual([]);
    expect(server.terminals.list()).toEqual([]);
    // And the connection is still fine.
    expect(await client.call(daemonService.daemonStatus)).toMatchObject({ activeSessions: 0, totals: { started: 0, failed: 0 } });
  });

  it("needs the token, and asks the hub's authorize hook for every method and for the stream it acts on", async () => {
    // Without the token the WebSocket is refused at the upgrade: no call ever reaches the hub.
    const server = await startTestServer({ profiles: AGENT_PROFILES });
    const anonymous = createClient({ connect: webSocketConnector(server.wsUrl), backoff: { initialMs: 50, maxMs: 200 } });
    onTestFinished(() => anonymous.close());
    await until(() => anonymous.status.status === 'offline' && anonymous.status.attempt > 0, 'the anonymous client to be refused');
    expect(anonymous.status.lastError?.message).toMatch(/401/);
    expect(await refusal(anonymous.call(daemonService.spawnSession, { profile: 'agent', prompt: 'x' }))).toMatchObject({
      code: 'UNAVAILABLE',
      data: { reason: 'notConnected' },
    });
    expect((await call(server.url, 'GET', '/api/sessions')).json.sessions).toEqual([]);

    // An application's own hooks: alice may do everything; bob may call the reads and watch, and read
    // the board — until his grant on the terminals is revoked.
    let bobReadsTerminals = true;
    const users: Record<string, Identity> = { 'alice-token-0123456789': { id: 'alice' }, 'bob-token-0123456789ab': { id: 'bob' } };
    const guarded = await startTestServer({
      profiles: AGENT_PROFILES,
      store: 'memory',
      hubOptions: {
        authenticate: ({ token }) => (token === undefined ? undefined : users[token]),
        authorize: (identity, resource, action) => {
          // The server's own in-process readers (its session terminals, the focus watcher) say `internal`.
          if (identity?.['internal'] === true || identity?.id === 'alice') return true;
          if (identity?.id !== 'bob') return false;
          if (action === 'call') return ['daemon.daemonStatus', 'daemon.sessionStatus', 'daemon.watch', 'daemon.executeTask'].includes(resource);
          if (resource.startsWith('terminal/')) return bobReadsTerminals && action === 'read';
          return resource === 'tasks/default' && action === 'read';
        },
      },
    });
    const alice = await connect(guarded.wsUrl, 'alice-token-0123456789');
    const bob = await connect(guarded.wsUrl, 'bob-token-0123456789ab');
    const bobHears = record(bob);
    const version = await tasksVersion(guarded);

    // The method itself: refused before the params are read.
    const spawn = await refusal(bob.call(daemonService.spawnSession, { profile: 'agent-stay', prompt: 'by bob' }));
    expect(spawn).toMatchObject({ code: 'FORBIDDEN', data: { method: 'daemon.spawnSession', action: 'call' } });
    expect((await refusal(bob.call(daemonService.spawnSession, { prompt: 42 } as never))).code).toBe('FORBIDDEN');
    expect(await tasksVersion(guarded)).toBe(version);
    // A method bob may call, on a stream he may only read: the command is refused as his.
    const { taskId, sessionId } = await alice.call(daemonService.executeTask, { task: { title: "Alice's" }, profile: 'agent-stay' });
    const execute = await refusal(bob.call(daemonService.executeTask, { taskId }));
    expect(execute).toMatchObject({ code: 'FORBIDDEN', data: { stream: 'tasks/default', action: 'write' } });
    // Nothing of bob's: alice's one session, linked to her task alone.
    const { state } = (await guarded.hub.read('tasks/default')) as { state: { sessions: object; tasks: Record<string, { sessionIds: string[] }> } };
    expect(Object.keys(state.sessions)).toEqual([sessionId]);
    expect(state.tasks[taskId]!.sessionIds).toEqual([sessionId]);
    expect(guarded.terminals.list()).toHaveLength(1);

    // Reads and watching are his; stopping is not.
    expect(await bob.call(daemonService.daemonStatus)).toMatchObject({ terminals: true });
    await bob.call(daemonService.watch, { sessionId });
    await until(() => bobHears.text(sessionId).includes('staying until stopped'), 'bob to see the agent');
    expect(await refusal(bob.call(daemonService.stopSession, { sessionId }))).toMatchObject({ code: 'FORBIDDEN', data: { method: 'daemon.stopSession' } });

    // Revoked: bob's watch ends with `unwatched`, and he cannot watch again.
    bobReadsTerminals = false;
    await guarded.hub.reauthorize((identity) => identity?.id === 'bob');
    await until(() => bobHears.of(sessionId).some((entry) => entry.kind === 'unwatched'), 'bob to be unwatched');
    expect(bobHears.of(sessionId).find((entry) => entry.kind === 'unwatched')!.params).toMatchObject({ error: { code: ErrorCodes.FORBIDDEN } });
    expect(await refusal(bob.call(daemonService.watch, { sessionId }))).toMatchObject({
      code: 'FORBIDDEN',
      data: { stream: `terminal/${sessionId}`, action: 'read' },
    });
    expect(await alice.call(daemonService.stopSession, { sessionId })).toMatchObject({ stopped: true });
    expect(bobHears.ended(sessionId)).toBeUndefined();
  });
});

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient, type LockstepClient } from '@lockstep/client';
import { builtInDomains, focusDomain, orchestrationDomain, tasksDomain } from '@lockstep/core';
import { Hub } from '@lockstep/server';
import { webSocketConnector } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * The `lockstep` client commands run as users run them: a real process from sources, against a hub
 * on a real socket. Every effect is checked by another client reading the stream.
 */
const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const MAIN = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));

const children = new Set<ChildProcessWithoutNullStreams>();
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  children.clear();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function lockstep(...args: string[]) {
  // LOCKSTEP_* from the environment of whoever runs the tests must not leak into the commands.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_')));
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', TSX, MAIN, ...args], { stdio: 'pipe', env });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    /** Exit code and output once the process has ended. */
    done: async () => ({ code: await exited, stdout, stderr }),
  };
}

/** Runs a one-shot command to its end. */
const cli = (...args: string[]) => lockstep(...args).done();

async function startHub() {
  const hub = new Hub({ domains: builtInDomains });
  let server = createWebSocketServer(hub, { port: 0 });
  await server.ready;
  const { port } = server.address();
  const url = `ws://127.0.0.1:${port}`;
  const observer = createClient({ connect: webSocketConnector(url), backoff: { initialMs: 20, maxMs: 200 } });
  cleanups.push(async () => {
    observer.close();
    await hub.close();
    await server.close();
  });
  return {
    hub,
    url,
    observer,
    /** Drops every connection and stops listening; `resume()` listens on the same port again. */
    async pause() {
      await server.close();
    },
    async resume() {
      server = createWebSocketServer(hub, { port });
      await server.ready;
    },
  };
}

async function settled(client: LockstepClient) {
  await client.whenIdle();
}

describe('lockstep client commands (processes against a hub)', () => {
  it('task and session commands change the board that another client sees', { timeout: 120_000 }, async () => {
    const { url, observer } = await startHub();
    const board = observer.stream(tasksDomain, 'p1');
    const at = ['--project', 'p1', '--server', url];

    const [created, docs, session] = await Promise.all([
      cli('task', 'create', 'Ship it', '--priority', 'high', ...at),
      cli('task', 'create', 'Write docs', '--id', 't2', '--description', 'all of it', ...at, '--json'),
      cli('session', 'create', '--id', 's1', '--name', 'agent-1', '--kind', 'cli', ...at),
    ]);
    for (const result of [created, docs, session]) expect(result).toMatchObject({ code: 0, stderr: '' });
    const shipId = created.stdout.trim();
    expect(shipId).toMatch(/^task_[a-z0-9]+$/);
    expect(JSON.parse(docs.stdout)).toMatchObject({ stream: 'tasks/p1', id: 't2', task: { title: 'Write docs', description: 'all of it' } });
    expect(session.stdout).toBe('s1\n');
    await board.waitFor(3);
    expect(board.getSnapshot().tasks[shipId]).toMatchObject({ title: 'Ship it', priority: 'high', status: 'pending' });
    expect(board.getSnapshot().sessions['s1']).toMatchObject({ name: 'agent-1', kind: 'cli', status: 'starting' });

    const [linked, updated] = await Promise.all([
      cli('session', 'add-task', 's1', 't2', ...at),
      cli('task', 'update', shipId, '--status', 'in_progress', '--prompt', 'go', ...at),
    ]);
    expect(linked).toMatchObject({ code: 0, stdout: 'linked s1 to t2\n' });
    expect(updated).toMatchObject({ code: 0, stdout: `updated ${shipId}\n` });
    await board.waitFor(5);
    expect(board.getSnapshot().tasks['t2']!.sessionIds).toEqual(['s1']);
    expect(board.getSnapshot().tasks[shipId]).toMatchObject({ status: 'in_progress', prompt: 'go' });

    expect(await cli('session', 'update', 's1', '--status', 'exited', '--exit-code', '0', ...at)).toMatchObject({ code: 0, stdout: 'updated s1\n' });
    await board.waitFor(6);
    expect(board.getSnapshot().sessions['s1']).toMatchObject({ status: 'exited', exitCode: 0 });

    const [tasks, sessions] = await Promise.all([cli('task', 'list', ...at, '--json'), cli('session', 'list', ...at)]);
    const listed = JSON.parse(tasks.stdout) as { stream: string; version: number; tasks: Array<{ id: string; sessionIds: string[] }> };
    expect(listed).toMatchObject({ stream: 'tasks/p1', version: 6 });
    // The two creates ran at once: either may have come first.
    expect(listed.tasks.map(({ id, sessionIds }) => ({ id, sessionIds })).sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      [
        { id: shipId, sessionIds: [] },
        { id: 't2', sessionIds: ['s1'] },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    );
    expect(sessions.stdout.split('\n')).toEqual(['ID  KIND  STATUS      TASKS  NAME', 's1  cli   exited (0)  1      agent-1', '']);

    expect(await cli('session', 'remove-task', 's1', 't2', ...at)).toMatchObject({ code: 0, stdout: 'unlinked s1 from t2\n' });
    await board.waitFor(7);
    expect(board.getSnapshot().tasks['t2']!.sessionIds).toEqual([]);

    const [deletedTask, deletedSession] = await Promise.all([cli('task', 'delete', shipId, ...at), cli('session', 'delete', 's1', ...at)]);
    expect(deletedTask).toMatchObject({ code: 0, stdout: `deleted ${shipId}\n` });
    expect(deletedSession).toMatchObject({ code: 0, stdout: 'deleted s1\n' });
    await board.waitFor(9);
    expect(Object.keys(board.getSnapshot().tasks)).toEqual(['t2']);
    expect(board.getSnapshot().sessions).toEqual({});
  });

  it('orchestration and focus commands change the counts and the focus set that another client sees', { timeout: 120_000 }, async () => {
    const { url, observer } = await startHub();
    const counts = observer.stream(orchestrationDomain, 'default');
    const focus = observer.stream(focusDomain, 'default');

    const set = await Promise.all([
      cli('orchestration', 'set-desired', 'ws-a', '3', '--server', url),
      cli('orchestration', 'set-desired', '/home/me/b', '2', '--server', url),
      cli('orchestration', 'set-running', 'ws-a', '1', '--server', url),
    ]);
    for (const result of set) expect(result.code).toBe(0);
    await counts.waitFor(3);
    expect(counts.getSnapshot().totals).toEqual({ desired: 5, running: 1 });
    const shown = await cli('orchestration', 'show', '--server', url, '--json');
    expect(JSON.parse(shown.stdout)).toMatchObject({ stream: 'orchestration/default', version: 3, totals: { desired: 5, running: 1 } });
    expect(await cli('orchestration', 'remove', '/home/me/b', '--server', url)).toMatchObject({
      code: 0,
      stdout: 'removed /home/me/b (totals: desired 3, running 1)\n',
    });
    await counts.waitFor(4);
    expect(Object.keys(counts.getSnapshot().workspaces)).toEqual(['ws-a']);

    // Four sessions focused by another client; a fifth from the CLI evicts the least recently active.
    for (const id of ['a', 'b', 'c', 'd']) {
      await focus.dispatch({ type: 'focus.set', payload: { sessionId: id } });
      await sleep(2); // distinct activity times
    }
    expect(await cli('focus', 'set', 'e', '--server', url)).toMatchObject({ code: 0, stdout: 'focused e (evicted a)\n' });
    await focus.waitFor(6);
    expect(focus.getSnapshot().focused).toEqual(['b', 'c', 'd', 'e']);
    expect(await cli('focus', 'blur', 'c', '--server', url)).toMatchObject({ code: 0, stdout: 'blurred c\n' });
    await focus.waitFor(7);
    const focused = await cli('focus', 'show', '--server', url, '--json');
    expect(JSON.parse(focused.stdout)).toMatchObject({ stream: 'focus/default', focused: ['b', 'd', 'e'], maxFocused: 4 });
    await settled(observer);
  });

  it('task list --json prints a board larger than a frame (its snapshot comes in pages)', { timeout: 120_000 }, async () => {
    const { hub, url } = await startHub();
    // 70 tasks of 19,000 characters: 1.35 MB of state, past the 1 MiB frame limit.
    for (let n = 0; n < 70; n++) {
      await hub.execute({
        stream: 'tasks/big',
        id: `big:${n}`,
        type: 'task.create',
        payload: { id: `task_${n}`, title: `Task ${n}`, description: `${n}`.padEnd(19_000, '.') },
      });
    }
    const listed = await cli('task', 'list', '--project', 'big', '--server', url, '--json', '--timeout', '30');
    expect(listed).toMatchObject({ code: 0, stderr: '' });
    const board = JSON.parse(listed.stdout) as { version: number; tasks: Array<{ id: string; description: string }> };
    expect(board.version).toBe(70);
    expect(board.tasks).toHaveLength(70);
    for (const task of board.tasks) expect(task.description).toBe(`${task.id.slice('task_'.length)}`.padEnd(19_000, '.'));
  });

  it("refusals exit with code 1 and print the hub's error code; nothing changes", { timeout: 60_000 }, async () => {
    const { url, observer } = await startHub();
    const board = observer.stream(tasksDomain, 'default');
    await board.dispatch({ type: 'task.create', payload: { id: 't1', title: 'There' } });

    const [missing, unlinked, conflict] = await Promise.all([
      cli('task', 'update', 'nope', '--status', 'completed', '--server', url),
      cli('session', 'add-task', 'nobody', 't1', '--server', url, '--json'),
      cli('task', 'create', 'Late', '--expected-version', '0', '--server', url),
    ]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('lockstep: COMMAND_REJECTED (task.notFound): no task nope\n');
    expect(missing.stdout).toBe('');
    expect(unlinked.code).toBe(1);
    expect(JSON.parse(unlinked.stdout)).toMatchObject({ error: { code: 'COMMAND_REJECTED', reason: 'session.notFound' } });
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toMatch(/^lockstep: VERSION_CONFLICT: /);
    await settled(observer);
    expect(board.version).toBe(1);
  });

  it('gives up on an unreachable hub with exit code 3 within --timeout', { timeout: 60_000 }, async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));

    const started = Date.now();
    const result = await cli('task', 'list', '--server', `ws://127.0.0.1:${port}`, '--timeout', '1');
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^lockstep: CONNECT_FAILED: could not connect to ws:\/\/127\.0\.0\.1:\d+\/ within 1 s: connect ECONNREFUSED/);
    // Well under the 10 s default: the 1 s timeout was applied (the rest is process start-up).
    expect(Date.now() - started).toBeLessThan(9_000);
  });

  it(
    'watch prints each committed event once, in order — also those missed while disconnected — and exits cleanly on SIGINT',
    { timeout: 120_000 },
    async () => {
      const { hub, url, observer, pause, resume } = await startHub();
      const board = observer.stream(tasksDomain, 'default');
      await board.dispatch({ type: 'task.create', payload: { id: 'before', title: 'History, not printed' } });
      const text = lockstep('watch', 'tasks/default', '--server', url);
      const json = lockstep('watch', 'tasks/default', '--server', url, '--json');

      // A watch prints what is committed once it is in sync: commit until both have printed something.
      for (let n = 0; text.output().stdout === '' || json.output().stdout === ''; n++) {
        await board.dispatch({ type: 'task.create', payload: { id: `warm-${n}`, title: 'warm-up' } });
        await sleep(100);
      }
      await board.dispatch({ type: 'task.create', payload: { id: 'A', title: 'A' } });
      await board.dispatch({ type: 'task.update', payload: { id: 'A', status: 'in_progress' } });

      // The hub stops listening (every connection drops); C is committed meanwhile; then it is back.
      await pause();
      await hub.execute({ id: 'while-away', stream: 'tasks/default', type: 'task.create', payload: { id: 'C', title: 'C' } });
      await resume();
      await settled(observer);
      await board.dispatch({ type: 'task.create', payload: { id: 'D', title: 'D' } });
      const last = board.version;
      const printed = (watch: typeof text) => watch.output().stdout.includes(`"id":"D"`);
      while (!printed(text) || !printed(json)) await sleep(50);

      text.child.kill('SIGINT');
      json.child.kill('SIGINT');
      const [textRun, jsonRun] = await Promise.all([text.done(), json.done()]);
      expect(textRun.code).toBe(0);
      expect(jsonRun.code).toBe(0);
      expect(textRun.stderr).toBe('');

      const lines = textRun.stdout.trimEnd().split('\n');
      for (const line of lines) expect(line).toMatch(/^\d+ \d{4}-\d\d-\d\dT[\d:.]+Z task\.(created|updated) \{.*\}$/);
      const versions = lines.map((line) => Number(line.split(' ')[0]));
      // Contiguous up to the last event: none missed, none twice — C included, though sent while away.
      expect(versions).toEqual(Array.from({ length: versions.length }, (_, i) => versions[0]! + i));
      expect(versions.at(-1)).toBe(last);
      expect(versions[0]).toBeGreaterThan(1); // the event before the watch started is history
      const ids = lines.map((line) => (JSON.parse(line.slice(line.indexOf('{'))) as { id: string }).id);
      expect(ids.slice(-4)).toEqual(['A', 'A', 'C', 'D']);

      const documents = jsonRun.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as { stream: string; version: number; type: string; commandId?: string });
      expect(documents.at(-1)).toMatchObject({ stream: 'tasks/default', version: last, type: 'task.created', data: { id: 'D' } });
      expect(documents.find((doc) => doc.commandId === 'while-away')).toMatchObject({ type: 'task.created', data: { id: 'C' } });
      const jsonVersions = documents.map((doc) => doc.version);
      expect(jsonVersions).toEqual(Array.from({ length: jsonVersions.length }, (_, i) => jsonVersions[0]! + i));
    },
  );
});

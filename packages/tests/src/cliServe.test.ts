import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { tasksDomain } from '@lockstep/core';
import { createSidecar } from '@lockstep/stdio';
import { webSocketConnector } from '@lockstep/ws';
import { afterEach, describe, expect, it } from 'vitest';

/** `lockstep serve`, run as users run it: a real process, real sockets and pipes, real signals. */
const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const MAIN = fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url));
const lockstepArgs = (...args: string[]) => ['--conditions=lockstep-source', '--import', TSX, MAIN, ...args];

const children = new Set<ChildProcessWithoutNullStreams>();
afterEach(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  children.clear();
});

function lockstep(...args: string[]) {
  const child = spawn(process.execPath, lockstepArgs(...args), { stdio: 'pipe' });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const line = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const look = () => {
        const match = stdout.match(pattern);
        if (match) resolve(match);
      };
      child.stdout.on('data', look);
      look();
      void exited.then(() => reject(new Error(`lockstep exited before printing ${pattern}: ${stdout}${stderr}`)));
    });
  return { child, exited, line, output: () => ({ stdout, stderr }) };
}

describe('lockstep serve', () => {
  it('prints its WebSocket address, serves clients, and stops cleanly on SIGINT', async () => {
    const server = lockstep('serve', '--port', '0');
    const [, url] = await server.line(/listening on (ws:\/\/127\.0\.0\.1:\d+)/);
    const client = createClient({ connect: webSocketConnector(url!), backoff: { initialMs: 50, maxMs: 200 } });
    const board = client.stream(tasksDomain, 'proj_1');
    await board.dispatch({ type: 'task.create', payload: { id: 'task_1', title: 'Ship it' } });
    expect(board.getSnapshot().tasks['task_1']?.title).toBe('Ship it');
    server.child.kill('SIGINT');
    expect(await server.exited).toBe(0);
    expect(server.output().stdout).toContain('stopping (SIGINT)');
    client.close();
  });

  it('accepts only the codec it is told to', async () => {
    const server = lockstep('serve', '--port', '0', '--codec', 'msgpack');
    const [, url] = await server.line(/listening on (ws:\/\/[^ ]+) \(subprotocols: lockstep\.v1\.msgpack;/);
    const refused = createClient({ connect: webSocketConnector(url!), backoff: { initialMs: 50, maxMs: 50 } });
    await new Promise<void>((resolve) => refused.status$.subscribe((status) => status.lastError && resolve()));
    expect(refused.status.lastError?.message).toMatch(/400/);
    refused.close();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('serves lockstep/1 on stdio as a sidecar, with logs on stderr only', async () => {
    let stderr = '';
    const sidecar = createSidecar({ command: process.execPath, args: lockstepArgs('serve', '--stdio'), stderr: (text) => (stderr += text) });
    const client = createClient({ connect: sidecar.connect });
    const board = client.stream(tasksDomain, 'proj_1');
    for (let i = 0; i < 20; i++) await board.dispatch({ type: 'task.create', payload: { title: `Task ${i}` } });
    await client.whenIdle();
    expect(Object.keys(board.getSnapshot().tasks)).toHaveLength(20);
    expect(board.version).toBe(20);
    expect(stderr).toContain('serving lockstep/1 on stdio');
    client.close();
    await sidecar.close();
  });

  it.each([
    [['serve', '--port', 'http'], /--port/],
    [['serve', '--store', 'mongodb://x'], /--store/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('refuses %j with exit code 2 and a clear message', async (args, message) => {
    const run = lockstep(...args);
    expect(await run.exited).toBe(2);
    expect(run.output().stderr).toMatch(message);
    expect(run.output().stderr).toContain('Usage: lockstep');
  });
});

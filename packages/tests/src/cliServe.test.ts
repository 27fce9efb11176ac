import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { ErrorCodes, tasksDomain } from '@lockstep/core';
import { createSidecar } from '@lockstep/stdio';
import { webSocketConnector } from '@lockstep/ws';
import { afterEach, describe, expect, it } from 'vitest';
import { SERVE_TOKEN, serveEnv } from './serveEnv.js';
import { upgradeStatus } from './upgradeStatus.js';
import { RawPeer } from './wsPeer.js';

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
  return lockstepWith(serveEnv(), ...args);
}

function lockstepWith(env: NodeJS.ProcessEnv, ...args: string[]) {
  const child = spawn(process.execPath, lockstepArgs(...args), { stdio: 'pipe', env });
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
    const client = createClient({ connect: webSocketConnector(url!, { token: SERVE_TOKEN }), backoff: { initialMs: 50, maxMs: 200 } });
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
    const refused = createClient({ connect: webSocketConnector(url!, { token: SERVE_TOKEN }), backoff: { initialMs: 50, maxMs: 50 } });
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

  it('requires its token, refuses other sites and other hosts, and leaves the token for local CLI commands', async () => {
    const runtimeDir = await mkdtemp(join(tmpdir(), 'lockstep-serve-runtime-'));
    try {
      // No LOCKSTEP_TOKEN: the hub makes one and keeps it, readable by this user only.
      const env = { ...serveEnv({ LOCKSTEP_RUNTIME_DIR: runtimeDir }) };
      delete env['LOCKSTEP_TOKEN'];
      const server = lockstepWith(env, 'serve', '--port', '0');
      const [, url, port] = await server.line(/listening on (ws:\/\/127\.0\.0\.1:(\d+))/);
      const tokenFile = join(runtimeDir, 'serve.token');
      const token = (await readFile(tokenFile, 'utf8')).trim();
      expect(token.length).toBeGreaterThanOrEqual(43);
      expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
      expect((await stat(runtimeDir)).mode & 0o077).toBe(0);
      expect(server.output().stdout).toContain(`the token from ${tokenFile}`);

      const upgrade = (headers: Record<string, string>) => upgradeStatus(url!, headers);
      expect(await upgrade({})).toBe(401);
      expect(await upgrade({ Authorization: 'Bearer not-the-token-at-all' })).toBe(401);
      expect(await upgrade({ Authorization: `Bearer ${token}` })).toBe(101);
      // With the token, still: a page of another site, or a name that is not this machine's (DNS rebinding).
      for (const origin of ['http://evil.example', 'null', `http://evil.example:${port}`, 'http://127.0.0.1:1']) {
        expect(await upgrade({ Authorization: `Bearer ${token}`, Origin: origin }), origin).toBe(403);
      }
      expect(await upgrade({ Authorization: `Bearer ${token}`, Host: `evil.example:${port}` })).toBe(403);
      expect(await upgrade({ Authorization: `Bearer ${token}`, Origin: `http://localhost:${port}` })).toBe(101);

      // A client command on this machine finds the token by itself.
      const create = lockstepWith(env, 'task', 'create', 'Found the token', '--server', url!, '--json');
      expect(await create.exited, JSON.stringify(create.output())).toBe(0);
      expect(JSON.parse(create.output().stdout)).toMatchObject({ task: { title: 'Found the token' } });

      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      // The announcement is gone with the hub.
      await expect(stat(join(runtimeDir, 'servers', `${port}.token`))).rejects.toThrow(/ENOENT/);
    } finally {
      await rm(runtimeDir, { recursive: true, force: true });
    }
  });

  it('refuses --insecure-no-auth on a non-loopback interface, and warns on loopback', async () => {
    const exposed = lockstep('serve', '--port', '0', '--host', '0.0.0.0', '--insecure-no-auth');
    expect(await exposed.exited).toBe(2);
    expect(exposed.output().stderr).toContain('non-loopback');
    const open = lockstep('serve', '--port', '0', '--insecure-no-auth');
    const [, url] = await open.line(/listening on (ws:\/\/127\.0\.0\.1:\d+)/);
    expect(open.output().stdout).toContain('WARNING: --insecure-no-auth');
    expect(await upgradeStatus(url!, {})).toBe(101);
    open.child.kill('SIGTERM');
    expect(await open.exited).toBe(0);
  });

  it('applies the limits it is given: subscriptions per connection, connections per address, messages a second', async () => {
    const server = lockstep('serve', '--port', '0', '--max-subscriptions', '1', '--max-connections-per-address', '2', '--rate-limit', '5');
    const [, url] = await server.line(/listening on (ws:\/\/127\.0\.0\.1:\d+)/);
    const auth = { headers: { Authorization: `Bearer ${SERVE_TOKEN}` } };

    const reader = await RawPeer.connect(url!, ['lockstep.v1.json'], auth);
    expect((await reader.call('hello', { protocol: 1, clientId: 'reader' })).result).toMatchObject({ protocol: 1 });
    expect((await reader.call('subscribe', { stream: 'tasks/a' })).result).toMatchObject({ stream: 'tasks/a' });
    expect((await reader.call('subscribe', { stream: 'tasks/b' })).error).toMatchObject({
      code: ErrorCodes.LIMIT_EXCEEDED,
      data: { limit: 'maxSubscriptionsPerConnection', max: 1 },
    });

    // Two connections from this address are open: a third is refused at the upgrade.
    const flooder = await RawPeer.connect(url!, ['lockstep.v1.json'], auth);
    expect(await upgradeStatus(url!, auth.headers)).toBe(429);

    // 5 messages a second, bursts of 10: forty pings at once cannot all be served (the default, 1,000
    // a second, would serve them all).
    expect((await flooder.call('hello', { protocol: 1, clientId: 'flooder' })).result).toMatchObject({ protocol: 1 });
    const answers: Array<{ id: number; result?: unknown; error?: { code: number } }> = [];
    flooder.socket.on('message', (data) => answers.push(JSON.parse((data as Buffer).toString())));
    for (let id = 100; id < 140; id++) flooder.sendRaw(JSON.stringify({ jsonrpc: '2.0', id, method: 'ping', params: {} }));
    await flooder.closed;
    const limited = answers.filter((answer) => answer.error?.code === ErrorCodes.RATE_LIMITED);
    const served = answers.filter((answer) => answer.result !== undefined);
    expect(limited.length).toBeGreaterThan(0);
    expect(served.length).toBeGreaterThan(0);
    expect(served.length).toBeLessThan(40);

    await reader.close();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('prints its help', async () => {
    const run = lockstep('serve', '--help');
    expect(await run.exited).toBe(0);
    expect(run.output().stdout).toContain('--token-file PATH');
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

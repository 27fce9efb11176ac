import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { builtInDomains } from '@lockstep/core';
import { Hub, type HubOptions } from '@lockstep/server';
import { createWebSocketServer, type LockstepWebSocketServer, type StandaloneOptions } from '@lockstep/ws/server';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientEnv } from './clientArgs.js';
import { ExitCodes } from './exitCodes.js';
import { run } from './run.js';

/** Client commands run in this process against real hubs on real sockets; no mocks. */
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startHub(options: Partial<HubOptions> = {}, ws: Partial<StandaloneOptions> = {}) {
  const hub = new Hub({ domains: builtInDomains, ...options });
  const server = createWebSocketServer(hub, { port: 0, ...ws });
  await server.ready;
  cleanups.push(async () => {
    await hub.close();
    await server.close();
  });
  return { hub, url: `ws://127.0.0.1:${server.address().port}` };
}

/** A hub reachable only at /lockstep of an HTTP server, as the reference server serves it. */
async function startHubAtPath() {
  const hub = new Hub({ domains: builtInDomains });
  const http: Server = createServer((_request, response) => response.end('dashboard'));
  const server: LockstepWebSocketServer = createWebSocketServer(hub, { server: http, path: '/lockstep' });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    await hub.close();
    await server.close();
    await new Promise((resolve) => http.close(resolve));
  });
  return { hub, port: (http.address() as AddressInfo).port };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function lockstep(argv: string[], options: { env?: ClientEnv; tty?: boolean; stop?: Promise<string> } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const status: string[] = [];
  const code = await run(argv, {
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    stopSignal: options.stop ?? new Promise(() => {}),
    env: options.env ?? {},
    ...(options.tty ? { status: (text: string) => status.push(text) } : {}),
  });
  return { code, stdout: out.join('\n'), stderr: err.join('\n'), status };
}

describe('client commands against a hub', () => {
  it('show a status line while connecting and clear it once done, only on a terminal and never with --json', async () => {
    const { url } = await startHub();
    const shown = await lockstep(['task', 'create', 'Ship it', '--server', url], { tty: true });
    expect(shown.code).toBe(ExitCodes.ok);
    expect(shown.status[0]).toBe(`connecting to ${url}/…`);
    expect(shown.status.at(-1)).toBe('');
    const quiet = await lockstep(['task', 'list', '--server', url, '--json'], { tty: true });
    expect(quiet.code).toBe(ExitCodes.ok);
    expect(quiet.status).toEqual([]);
    expect(JSON.parse(quiet.stdout)).toMatchObject({ stream: 'tasks/default', version: 1, tasks: [{ title: 'Ship it' }] });
  });

  it('give up on an unreachable hub after --timeout with exit code 3, saying why on the status line', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const result = await lockstep(['task', 'list', '--server', url, '--timeout', '0.5'], { tty: true });
    expect(result.code).toBe(ExitCodes.unreachable);
    expect(result.stderr).toMatch(/^lockstep: CONNECT_FAILED: could not connect to ws:\/\/127\.0\.0\.1:\d+\/ within 0\.5 s: connect ECONNREFUSED/);
    expect(result.status.some((text) => /^cannot reach ws:.*ECONNREFUSED.*; retrying…$/.test(text))).toBe(true);
    expect(result.status.at(-1)).toBe('');
  });

  it('map an http:// address to the /lockstep endpoint, and fail at once (exit 3) where no hub answers', async () => {
    const { port } = await startHubAtPath();
    const reached = await lockstep(['orchestration', 'set-desired', 'ws-1', '2', '--server', `http://127.0.0.1:${port}/`]);
    expect(reached).toMatchObject({ code: ExitCodes.ok, stdout: 'ws-1: desired 2, running 0 (totals: desired 2, running 0)' });
    // A 404 at the upgrade will not change by waiting: no retries until the 30 s timeout.
    const missed = await lockstep(['orchestration', 'show', '--server', `ws://127.0.0.1:${port}/elsewhere`, '--timeout', '30']);
    expect(missed.code).toBe(ExitCodes.unreachable);
    expect(missed.stderr).toMatch(/CONNECT_FAILED: no Lockstep hub at ws:\/\/127\.0\.0\.1:\d+\/elsewhere: the server answered 404/);
  });

  it('send --token at the upgrade: refused without it (exit 1, UNAUTHORIZED, no waiting), served with it', async () => {
    const { url } = await startHub({}, { authenticate: ({ token }) => (token === 's3cret' ? { id: 'ci' } : undefined) });
    const refused = await lockstep(['task', 'list', '--server', url, '--timeout', '30', '--json']);
    expect(refused.code).toBe(ExitCodes.failed);
    expect(JSON.parse(refused.stdout)).toMatchObject({ error: { code: 'UNAUTHORIZED' } });
    expect((await lockstep(['task', 'list', '--server', url, '--token', 's3cret'])).code).toBe(ExitCodes.ok);
  });

  it('send the token in hello too (LOCKSTEP_TOKEN), and report a refused handshake or subscription with its code', async () => {
    const { url } = await startHub({
      authenticate: ({ token }) => (token === 'agent-7' ? { id: 'agent-7' } : undefined),
      authorize: (_identity, stream) => stream !== 'tasks/secret',
    });
    const refused = await lockstep(['focus', 'show', '--server', url, '--timeout', '30']);
    expect(refused.code).toBe(ExitCodes.failed);
    expect(refused.stderr).toMatch(/^lockstep: UNAUTHORIZED: /);
    const env = { LOCKSTEP_TOKEN: 'agent-7', LOCKSTEP_SERVER: url };
    expect(await lockstep(['focus', 'show'], { env })).toMatchObject({ code: ExitCodes.ok, stdout: '0 of at most 4 sessions focused in focus/default' });
    const forbidden = await lockstep(['task', 'list', '--project', 'secret'], { env });
    expect(forbidden.code).toBe(ExitCodes.failed);
    expect(forbidden.stderr).toMatch(/^lockstep: FORBIDDEN: /);
  });

  it('stop with exit code 130 when interrupted before an answer', async () => {
    const url = `ws://127.0.0.1:${await closedPort()}`;
    const result = await lockstep(['task', 'create', 'Never sent', '--server', url], { stop: Promise.resolve('SIGINT') });
    expect(result.code).toBe(ExitCodes.interrupted);
    expect(result.stderr).toBe('lockstep: INTERRUPTED: interrupted (SIGINT) before the hub answered: the command may or may not be applied');
  });

  it('apply a command id at most once: the same --command-id again is a duplicate, reported as such', async () => {
    const { url, hub } = await startHub();
    const args = ['task', 'create', 'Once', '--id', 'once', '--command-id', 'deploy-42', '--server', url, '--json'];
    const first = await lockstep(args);
    const again = await lockstep(args);
    expect(first.code).toBe(ExitCodes.ok);
    expect(again.code).toBe(ExitCodes.ok);
    expect(JSON.parse(first.stdout)).toMatchObject({ id: 'once', version: 1, commandId: 'deploy-42', events: [{ type: 'task.created' }] });
    expect(JSON.parse(again.stdout)).toMatchObject({ id: 'once', version: 1, duplicate: true });
    expect(hub.stream('tasks/default').version).toBe(1);
  });
});

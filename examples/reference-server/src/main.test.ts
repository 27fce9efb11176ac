import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { call, tempDir, until } from './testing.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

/** `pnpm start`'s command, as a child process (killed when the test finishes if still running). */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...withoutToken(process.env), LOCKSTEP_RUNTIME_DIR: runtimeDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output, exited };
}

/** Tests leave no token files in the user's runtime directory. */
let runtimeDir = '';

function withoutToken(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { LOCKSTEP_TOKEN: _, ...rest } = env;
  return rest;
}

const readyUrl = (stdout: string) => /Lockstep reference server on (http:\/\/\S+) /.exec(stdout)?.[1];

async function waitReady(run: { output: { stdout: string; stderr: string }; child: ChildProcess }): Promise<string> {
  await until(() => readyUrl(run.output.stdout) !== undefined || run.child.exitCode !== null, 'the ready line', 60_000);
  const url = readyUrl(run.output.stdout);
  if (url === undefined) throw new Error(`the server did not start:\n${run.output.stdout}\n${run.output.stderr}`);
  return url;
}

describe('pnpm start (the process)', () => {
  it('prints its URL when ready, serves, and stops cleanly on SIGTERM', async () => {
    const data = await tempDir();
    runtimeDir = await tempDir();
    const run = start(['--port', '0', '--data', data]);
    const url = await waitReady(run);
    expect(run.output.stdout).toContain(`store: file:${data}`);
    expect(run.output.stdout).toMatch(/WebSocket ws:\/\/127\.0\.0\.1:\d+\/lockstep/);

    // A token was generated into the data directory, readable by this user only, and announced
    // for local clients; the login URL carries it in the fragment.
    const tokenFile = join(data, 'token');
    const token = (await readFile(tokenFile, 'utf8')).trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await stat(tokenFile)).mode & 0o777).toBe(0o600);
    expect(run.output.stdout).toContain(`Open the dashboard: ${url}/login#${token}`);
    const port = new URL(url).port;
    expect((await readFile(join(runtimeDir, 'servers', `${port}.token`), 'utf8')).trim()).toBe(token);
    const bearer = { Authorization: `Bearer ${token}` };
    expect((await call(url, 'POST', '/api/tasks', { body: { title: 'Without a token' } })).status).toBe(401);
    expect((await call(url, 'POST', '/api/tasks', { body: { title: 'From a real process' }, headers: bearer })).status).toBe(201);

    // A second server on the same data directory exits with 1, naming the owner.
    const second = start(['--port', '0', '--data', data]);
    expect(await second.exited).toBe(1);
    expect(second.output.stderr).toMatch(/locked by process \d+/);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output.stdout).toContain('stopping (SIGTERM)');
    await expect(stat(join(runtimeDir, 'servers', `${port}.token`))).rejects.toThrow(/ENOENT/);

    // What it stored is there for the next one, which takes PORT from the environment and keeps the token.
    const again = start(['--data', data], { PORT: '0' });
    const nextUrl = await waitReady(again);
    expect((await call(nextUrl, 'GET', '/api/tasks', { headers: bearer })).json.tasks).toEqual([expect.objectContaining({ title: 'From a real process' })]);
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  });

  it('takes the token from LOCKSTEP_TOKEN, and serves without one only on loopback and loudly', async () => {
    runtimeDir = await tempDir();
    const token = 'from-the-environment-0123456789';
    const run = start(['--port', '0', '--store', 'memory', '--no-terminals'], { LOCKSTEP_TOKEN: token });
    const url = await waitReady(run);
    expect(run.output.stdout).toContain('(from $LOCKSTEP_TOKEN)');
    expect((await call(url, 'GET', '/api/tasks', { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await call(url, 'GET', '/api/tasks', { headers: { Authorization: 'Bearer from-the-environment-0123456788' } })).status).toBe(401);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);

    const open = start(['--port', '0', '--store', 'memory', '--no-terminals', '--insecure-no-auth']);
    const openUrl = await waitReady(open);
    expect(open.output.stdout).toContain('WARNING: --insecure-no-auth');
    expect((await call(openUrl, 'GET', '/api/tasks')).status).toBe(200);
    open.child.kill('SIGTERM');
    expect(await open.exited).toBe(0);

    const exposed = start(['--port', '0', '--store', 'memory', '--no-terminals', '--insecure-no-auth', '--host', '0.0.0.0']);
    expect(await exposed.exited).toBe(1);
    expect(exposed.output.stderr).toContain('without authentication');
  });

  it("runs a --profile's program for a session created with curl-like requests, and refuses a profile that cannot run", async () => {
    runtimeDir = await tempDir();
    const token = 'profiles-token-0123456789abcdef';
    const bearer = { Authorization: `Bearer ${token}` };
    const agent = 'agent:argv=node examples/reference-server/agent/agent.mjs --delay 1';
    const run = start(['--port', '0', '--store', 'memory', '--profile', agent], { LOCKSTEP_TOKEN: token });
    const url = await waitReady(run);
    expect(run.output.stdout).toContain('Session profiles: shell (default), agent');
    expect((await call(url, 'GET', '/health')).json).toEqual({ status: 'ok' });
    expect((await call(url, 'GET', '/api/profiles', { headers: bearer })).json.profiles.map((profile: { name: string }) => profile.name)).toEqual([
      'shell',
      'agent',
    ]);
    // curl -X POST …/api/sessions -H 'Authorization: Bearer …' -d '{"profile":"agent","prompt":"…"}'
    const created = await call(url, 'POST', '/api/sessions', { body: { profile: 'agent', prompt: 'Count the words here' }, headers: bearer });
    expect(created.status).toBe(201);
    const id = created.json.id as string;
    await until(async () => (await call(url, 'GET', `/api/sessions/${id}`, { headers: bearer })).json.status === 'exited', 'the agent to finish', 30_000);
    expect((await call(url, 'GET', `/api/sessions/${id}`, { headers: bearer })).json).toMatchObject({
      status: 'exited',
      exitCode: 0,
      profile: 'agent',
      process: { state: 'exited' },
    });
    expect((await call(url, 'GET', '/api/status', { headers: bearer })).json).toMatchObject({ totals: { started: 1, exited: 1, failed: 0 } });
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);

    const missing = start(['--port', '0', '--store', 'memory', '--profile', 'gone=no-such-agent-program'], { LOCKSTEP_TOKEN: token });
    expect(await missing.exited).toBe(1);
    expect(missing.output.stderr).toContain('profile gone: no executable "no-such-agent-program" on its PATH');
    const malformed = start(['--port', '0', '--store', 'memory', '--profile', 'gone'], { LOCKSTEP_TOKEN: token });
    expect(await malformed.exited).toBe(2);
    expect(malformed.output.stderr).toContain('expected NAME[:PROMPT]=PROGRAM');
  });

  it('exits with 2 and the usage on a bad command line', async () => {
    const run = start(['--port', 'many']);
    expect(await run.exited).toBe(2);
    expect(run.output.stderr).toContain('--port: ');
    expect(run.output.stderr).toContain('Usage: pnpm start [options]');
  });
});

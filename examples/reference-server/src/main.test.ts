import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { call, tempDir, until } from './testing.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));

/** `pnpm start`'s command, as a child process (killed when the test finishes if still running). */
function start(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output.stdout += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output.stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, output, exited };
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
    const run = start(['--port', '0', '--data', data]);
    const url = await waitReady(run);
    expect(run.output.stdout).toContain(`store: file:${data}`);
    expect(run.output.stdout).toMatch(/WebSocket ws:\/\/127\.0\.0\.1:\d+\/lockstep/);
    expect((await call(url, 'POST', '/api/tasks', { body: { title: 'From a real process' } })).status).toBe(201);

    // A second server on the same data directory exits with 1, naming the owner.
    const second = start(['--port', '0', '--data', data]);
    expect(await second.exited).toBe(1);
    expect(second.output.stderr).toMatch(/locked by process \d+/);

    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    expect(run.output.stdout).toContain('stopping (SIGTERM)');

    // What it stored is there for the next one, which takes PORT from the environment.
    const again = start(['--data', data], { PORT: '0' });
    const nextUrl = await waitReady(again);
    expect((await call(nextUrl, 'GET', '/api/tasks')).json.tasks).toEqual([expect.objectContaining({ title: 'From a real process' })]);
    again.child.kill('SIGINT');
    expect(await again.exited).toBe(0);
  });

  it('exits with 2 and the usage on a bad command line', async () => {
    const run = start(['--port', 'many']);
    expect(await run.exited).toBe(2);
    expect(run.output.stderr).toContain('--port: ');
    expect(run.output.stderr).toContain('Usage: pnpm start [options]');
  });
});

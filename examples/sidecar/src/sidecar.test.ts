import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient } from '@lockstep/client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startOrchestrator, type Mode } from './launch.js';
import { MANAGER_APP, manager, orchestrate } from './services.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
/** `--import tsx` resolves from the working directory; an absolute URL works from anywhere. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** `pnpm sidecar [args]` as a child process; killed when the test ends if it is still running. */
async function runExample(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', TSX, MAIN, ...args], {
    cwd: ROOT,
    env: withoutToken(process.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  return { code, stdout, stderr };
}

function withoutToken(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { LOCKSTEP_TOKEN: _, LOCKSTEP_SIDECAR_MODE: __, ...rest } = env;
  return rest;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.each([
  { mode: 'sidecar', args: [] as string[], specific: 'a missing orchestrator is reported at once (not-found' },
  { mode: 'service', args: ['--ws'], specific: 'without the token is refused at the upgrade: Unexpected server response: 401' },
])('pnpm sidecar in $mode mode (the process)', ({ mode, args, specific }) => {
  it('passes every check, prints them, and leaves no process or file behind', async () => {
    const run = await runExample(args);
    const output = run.stdout;
    expect(run.code, `${output}\n${run.stderr}`).toBe(0);
    expect(output).toContain(mode === 'sidecar' ? 'in sidecar mode (stdio pipes)' : 'in service mode (WebSocket with a token)');
    expect(output).not.toContain('✗');
    expect(output).toMatch(/All \d+ checks passed\./);
    for (const line of [
      '✓ versions negotiated at hello: orchestrate 1.2.0 serves our 1.2.0; orchflow 2.1.0 satisfies our ">=2.1.0 <3.0.0", and our 2.0.4 its "^2.0.0"',
      '← manager.createPane terminal "npm test": opened pane-1',
      '✓ orchestrate.route called manager.createPane back on the same connection',
      '✓ shared state: the orchestrator recorded both routings in streams the manager sees',
      '✓ notification manager → orchestrator: it completed route-1',
      '✓ the call in flight failed fast: UNAVAILABLE (connectionLost)',
      '✓ orchestrate.route "deploy staging" while it is down: UNAVAILABLE (notConnected)',
      '✓ orchestrate.status (idempotent) while it is down: UNAVAILABLE (notConnected)',
      "✓ the manager's local view stays usable meanwhile",
      "2 routed commands back, and the manager's streams resumed without a reset",
      '✓ the queued commands were routed after the restart, with new task ids (route-3, route-4)',
      '✓ a caller built for orchestrate 2.0 is refused before anything is sent: METHOD_NOT_FOUND (incompatibleVersion)',
      '✓ a manager of orchflow 1.9.0 is refused at hello: INCOMPATIBLE_APP',
      '✓ converged',
      specific,
    ]) {
      expect(output).toContain(line);
    }
    // The failure was UNAVAILABLE within its 20 s timeout, not a TIMEOUT: it did not wait.
    expect(output).not.toMatch(/TIMEOUT/);

    // It removed the orchestrator's store, and every orchestrator it started is gone.
    const store = /the orchestrator's file store: (\S+)/.exec(output)?.[1];
    expect(store).toBeDefined();
    expect(existsSync(store!)).toBe(false);
    const pids = [...output.matchAll(/spawned the orchestrator, pid (\d+)/g)].map((match) => Number(match[1]));
    expect(pids.length).toBeGreaterThanOrEqual(2);
    for (const pid of pids) expect(isRunning(pid), `orchestrator ${pid} still running`).toBe(false);
  });
});

describe.each(['sidecar', 'service'] as const)('a SIGKILLed orchestrator (%s mode)', (mode: Mode) => {
  it('fails the call in flight with UNAVAILABLE connectionLost and new calls with notConnected, before any timeout; then serves again', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lockstep-seed004-test-'));
    const orchestrator = await startOrchestrator(mode, dataDir, () => {}).catch((error: unknown) => {
      rmSync(dataDir, { recursive: true, force: true });
      throw error;
    });
    // A minute for every call: a failure that waited for it would be TIMEOUT, not UNAVAILABLE.
    const client = createClient({
      connect: orchestrator.connect,
      clientId: 'manager',
      app: MANAGER_APP,
      callTimeoutMs: 60_000,
      backoff: { initialMs: 50, maxMs: 200 },
    });
    onTestFinished(async () => {
      client.close();
      await orchestrator.close();
      rmSync(dataDir, { recursive: true, force: true });
    });
    client.serve(manager, { createPane: () => ({ paneId: 'pane-1' }) });
    const thinking = new Promise<void>((resolve) => client.on(orchestrate.progress, ({ stage }) => stage === 'thinking' && resolve()));
    await client.whenIdle();

    const inFlight = client.call(orchestrate.route, { command: 'plan the release' });
    await thinking;
    const killed = await orchestrator.pid();
    process.kill(killed, 'SIGKILL');
    await expect(inFlight).rejects.toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'connectionLost' } });
    // The connection is gone: nothing is sent, whether the method is idempotent or not.
    await expect(client.call(orchestrate.route, { command: 'deploy staging' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      data: { reason: 'notConnected' },
    });
    await expect(client.call(orchestrate.status)).rejects.toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'notConnected' } });

    // Restarted (by the sidecar, or the service supervisor), it answers again.
    await client.whenIdle();
    expect(await orchestrator.pid()).not.toBe(killed);
    await expect(client.call(orchestrate.status)).resolves.toMatchObject({ routed: 0, thinking: 0, store: `file:${dataDir}` });
    await expect(client.call(orchestrate.route, { command: 'run tests' })).resolves.toEqual({
      agent: 'tester',
      paneType: 'terminal',
      paneId: 'pane-1',
      taskId: 'route-1',
    });
  });
});

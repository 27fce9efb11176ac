import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect, it, onTestFinished } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MANAGER = fileURLToPath(new URL('../../python-host/manager.py', import.meta.url));

/**
 * examples/python-host/manager.py: a manager written with Python's standard library only speaks the
 * orchestrator's services over stdio — hello with its services and app, a call answered after the
 * orchestrator's call back, a notification, the shared stream, errors.
 */
it('the Python standard-library manager drives the orchestrator sidecar and passes its checks', async () => {
  const child = spawn('python3', [MANAGER], {
    cwd: ROOT,
    // The orchestrator runs on this Node.
    env: { ...process.env, NODE: process.execPath, PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const code = await new Promise<number | null>((resolve) => child.once('close', (exitCode) => resolve(exitCode)));

  expect(code, `${stdout}\n${stderr}`).toBe(0);
  expect(stdout).not.toContain('✗');
  for (const line of [
    "hello answered: protocol 1, app orchflow 2.1.0, services {'orchestrate': '1.2.0'}",
    '✓ versions negotiated at hello',
    '<- manager.createPane terminal "npm test": opened py-pane-1',
    '{"agent": "tester", "paneType": "terminal", "paneId": "py-pane-1", "taskId": "route-1"}',
    '✓ orchestrate.route called manager.createPane back, and answered with the pane we opened',
    '✓ the orchestrator recorded route-1 in py-pane-1 in tasks/orchflow',
    '✓ manager.paneClosed: the orchestrator completed route-1',
    '✓ orchestrate.status: {"routed": 1',
    'is refused: INVALID_PARAMS (-32602)',
    'is refused: METHOD_NOT_FOUND (-32601)',
    '✓ the orchestrator exited with code 0 once its stdin closed',
    'All 8 checks passed.',
  ]) {
    expect(stdout).toContain(line);
  }
  const store = /store (\/\S+lockstep-python-host-\S+)/.exec(stdout)?.[1];
  expect(store).toBeDefined();
  expect(existsSync(store!)).toBe(false);
});

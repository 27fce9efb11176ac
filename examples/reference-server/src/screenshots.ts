/**
 * `pnpm screenshots`: refreshes the dashboard's pictures in docs/img/ — the only thing that writes
 * them (`pnpm test` leaves the tree as it was). It starts the reference server as `pnpm start` does
 * (a fresh data directory, bash without rc files in a scratch home), signs a 1400×1000 headless
 * Chromium in with the login URL, plays a small day of the field notes through the REST API, an
 * IDE's lockstep/1 client and the dashboard itself, and captures:
 *
 * - `docs/img/dashboard.png` (the README's): the default project, board and terminals together —
 *   orchestration counts with a leased workspace, the task board, four live terminals, the one
 *   "next out" marked and an eviction announced;
 * - `docs/img/dashboard-project.png`: another project (`?project=proj_123`), opened with the
 *   picker, with the tasks other apps posted there, in the board-only layout.
 *
 * Needs Chromium at /usr/bin/chromium (`apt-get install -y chromium`). Exits 1 on any failure.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@lockstep/client';
import { orchestrationDomain } from '@lockstep/core';
import { CHROMIUM, launchChromium } from '@lockstep/tests/chromium';
import { webSocketConnector } from '@lockstep/ws';
import type { Page } from 'playwright-core';
import { WS_PATH } from './contract.js';
import { spawnReferenceServer, type ServerProcess } from './serverProcess.js';

const IMAGES = fileURLToPath(new URL('../../../docs/img/', import.meta.url));
const VIEWPORT = { width: 1400, height: 1000 };
const WAIT_MS = 20_000;
const OTHER_PROJECT = 'proj_123';

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'lockstep-screenshots-'));
  const home = join(root, 'home');
  await mkdir(home);
  const cleanups: Array<() => unknown> = [() => rm(root, { recursive: true, force: true })];
  try {
    const { LOCKSTEP_TOKEN: _, ...env } = process.env;
    const server = await spawnReferenceServer({
      dataDir: join(root, 'data'),
      cwd: home,
      env: { ...env, SHELL: '/bin/bash', HOME: home, LOCKSTEP_RUNTIME_DIR: join(root, 'run') },
    });
    cleanups.unshift(() => server.stop());
    const api = rest(server);

    // Seed 000: three IDEs on two machines; the one on machine A holds its entry with a lease.
    const ide = createClient({
      connect: webSocketConnector(`${server.url.replace(/^http/, 'ws')}${WS_PATH}`, { token: server.token }),
      clientId: 'machine-a-ide-2',
    });
    cleanups.unshift(() => ide.close());
    await ide
      .stream(orchestrationDomain, 'default')
      .dispatch({ type: 'workspace.setDesired', payload: { workspaceId: 'machine-a/ide-2', desired: 2, lease: true } });
    await ide.stream(orchestrationDomain, 'default').dispatch({ type: 'workspace.setRunning', payload: { workspaceId: 'machine-a/ide-2', running: 2 } });
    await api('PUT', `/api/orchestration/workspaces/${encodeURIComponent('machine-b/ide-1')}/desired`, { desired: 1 });
    await api('PUT', `/api/orchestration/workspaces/${encodeURIComponent('machine-a/ide-3')}/desired`, { desired: 3 });
    await api('PUT', `/api/orchestration/workspaces/${encodeURIComponent('machine-a/ide-3')}/running`, { running: 1 });

    // Seed 002: a board in the default project…
    const task = async (title: string, priority: string, status?: string, projectId?: string): Promise<string> => {
      const id = (await api('POST', '/api/tasks', { title, priority, ...(projectId && { projectId }) }))['id'] as string;
      if (status) await api('PATCH', `/api/tasks/${id}${projectId ? `?projectId=${projectId}` : ''}`, { status });
      return id;
    };
    const auth = await task('Refactor authentication service', 'high', 'in_progress');
    await task('Fix the flaky reconnect test', 'urgent', 'blocked');
    const notes = await task('Write the release notes', 'medium');
    for (const title of ['Review the REST docs', 'Add rate-limit metrics', 'Profile the snapshot writer', 'Upgrade xterm.js']) await task(title, 'low');
    await task('Rotate the signing keys', 'medium', 'completed');
    // …and another app's tasks in proj_123 (the seed's request, as written).
    await task('Split auth into a microservice', 'high', undefined, OTHER_PROJECT);
    await task('Migrate the session store', 'medium', 'in_progress', OTHER_PROJECT);
    await task('Load-test the gateway', 'low', undefined, OTHER_PROJECT);

    // Sessions, each with a shell on the server; agents linked to their tasks.
    for (const [id, name] of [
      ['build', 'build'],
      ['tests', 'tests'],
      ['agent-1', 'agent-1'],
      ['agent-2', 'agent-2'],
      ['reviewer', 'reviewer'],
    ] as const) {
      await api('POST', `/api/sessions/${id}`, { name, kind: id.startsWith('agent') ? 'agent' : 'terminal' });
    }
    await api('POST', `/api/sessions/agent-1/tasks/${auth}`);
    await api('POST', `/api/sessions/agent-2/tasks/${notes}`);
    await api('POST', `/api/sessions/reviewer/tasks/${auth}`);

    const browser = await launchChromium();
    cleanups.unshift(() => browser.close());
    const page = await browser.newPage({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    await page.goto(server.loginUrl);
    await page.waitForURL((address) => address.pathname === '/');
    await waitFor(page, 'the dashboard online', () => document.querySelector('[data-testid=connection]')?.getAttribute('data-status') === 'online');

    // Focus four, from the session list; a command in each terminal.
    const commands: Record<string, string> = {
      build: 'echo "compiling 11 packages…" && echo "done in 4.2 s"',
      tests: 'seq -f "test %g passed" 1 4',
      'agent-1': 'echo "agent-1: working on the auth refactor"',
      'agent-2': 'printf "%s\\n" "release notes:" "- project picker" "- layouts"',
    };
    for (const id of Object.keys(commands)) {
      await page.click(`[data-testid=session-row][data-session-id="${id}"] [data-testid=session-focus]`);
      await waitFor(
        page,
        `${id}'s terminal live`,
        (sessionId) => document.querySelector(`[data-testid=terminal-pane][data-terminal-id="${sessionId}"]`)?.getAttribute('data-phase') === 'live',
        id,
      );
    }
    for (const [id, command] of Object.entries(commands)) {
      await waitFor(
        page,
        `${id}'s prompt`,
        (sessionId) => /[$#]/.test(document.querySelector(`[data-testid=terminal-pane][data-terminal-id="${sessionId}"] .xterm-rows`)?.textContent ?? ''),
        id,
      );
      await page.click(`[data-testid=focus-tile][data-session-id="${id}"] .xterm`);
      await page.keyboard.type(`${command}\n`);
    }
    await waitFor(page, 'the output', () => (document.querySelector('[data-terminal-id="tests"] .xterm-rows')?.textContent ?? '').includes('test 4 passed'));
    // Typing in agent-2 last made build the least active: the fifth focus evicts it, visibly.
    await page.click('[data-testid=session-row][data-session-id="reviewer"] [data-testid=session-focus]');
    await waitFor(page, 'the eviction', () => document.querySelector('[data-testid=eviction-notice]') !== null);
    await page.mouse.click(5, 5); // out of the terminals: no cursor highlight
    await shoot(page, 'dashboard.png');

    // Another project, opened with the picker; the board alone.
    await page.click('[data-testid=layout-board]');
    await page.selectOption('[data-testid=project-select]', OTHER_PROJECT);
    await waitFor(page, "proj_123's board", () => document.querySelectorAll('[data-testid=task-card]').length === 3);
    await shoot(page, 'dashboard-project.png');
    // The next visit to this origin starts in "both" again (localStorage lives in the browser profile, thrown away here).
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

/** A REST caller with the server's token. */
function rest(server: ServerProcess) {
  return async (method: string, path: string, body?: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${server.token}`, ...(body !== undefined && { 'Content-Type': 'application/json' }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  };
}

async function waitFor(page: Page, what: string, check: (arg: string) => boolean, arg = ''): Promise<void> {
  try {
    await page.waitForFunction(check, arg, { timeout: WAIT_MS, polling: 50 });
  } catch (error) {
    throw new Error(`the dashboard never showed ${what}`, { cause: error });
  }
}

async function shoot(page: Page, name: string): Promise<void> {
  // Let the last frame settle (xterm paints on animation frames).
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
  const path = join(IMAGES, name);
  await page.screenshot({ path });
  console.log(`wrote ${path}`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  if (error instanceof Error && /Executable doesn't exist|ENOENT/.test(String(error.message)))
    console.error(`Chromium is needed at ${CHROMIUM}: apt-get install -y chromium`);
  process.exitCode = 1;
});

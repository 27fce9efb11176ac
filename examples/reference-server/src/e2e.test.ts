import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { launchChromium, requireChromium, skipWithoutChromium } from '@lockstep/tests/chromium';
import type { Browser, Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PROJECT_ID } from './contract.js';

/**
 * The reference server end to end, as a new user meets it: the server process `pnpm start` runs,
 * two dashboard tabs in headless Chromium, the `lockstep` CLI as a process and plain HTTP calls to
 * the REST API each change the state, and every tab shows every change — asserted on the DOM.
 * The scenarios are the field notes': seed 002's three multi-client tests, seed 000's
 * cross-instance orchestration example (global desired is the sum), seed 001's fifth focus
 * evicting the least active session; and a command typed into a terminal shows its output.
 */

const skipBrowser = skipWithoutChromium('e2e.test');

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const SERVER_MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const CLI_MAIN = fileURLToPath(new URL('../../../packages/cli/src/main.ts', import.meta.url));
const SCREENSHOT = fileURLToPath(new URL('../../../docs/img/dashboard.png', import.meta.url));
const WAIT_MS = 15_000;

// ---------------------------------------------------------------------------------------------
// Processes: the server as `pnpm start` runs it, and the CLI
// ---------------------------------------------------------------------------------------------

const tsxNode = (main: string, args: readonly string[]) => [process.execPath, ['--conditions=lockstep-source', '--import', TSX, main, ...args]] as const;

/** Where the server leaves its token for local clients (the CLI finds it there): the test's own. */
let runtimeDir = '';
/** The token the server generated, for the plain HTTP calls. */
let token = '';

/** The environment of the server and CLI processes: no token of the developer's, the test's runtime directory. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { LOCKSTEP_TOKEN: _, ...env } = process.env;
  return { ...env, LOCKSTEP_RUNTIME_DIR: runtimeDir, ...extra };
}

/** Starts the reference server (what `pnpm start` runs) on a free port; stops it when the test ends. */
async function startServer(dataDir: string, cwd: string): Promise<{ url: string; loginUrl: string; output: () => string }> {
  const [command, args] = tsxNode(SERVER_MAIN, ['--port', '0', '--data', dataDir]);
  // The terminals run bash with HOME (inherited by them) in the test's directory: no user rc files,
  // which on a developer's machine may print anything or block (a shell plugin waiting on a lock).
  const child = spawn(command, args, { cwd, stdio: 'pipe', env: childEnv({ SHELL: '/bin/bash', HOME: cwd }) });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 10_000))]);
    if (!stopped) child.kill('SIGKILL');
  });
  const [url, loginUrl] = await new Promise<[string, string]>((resolve, reject) => {
    const look = () => {
      const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      const login = /Open the dashboard: (\S+)/.exec(output);
      if (match && login) resolve([match[1]!, login[1]!]);
    };
    child.stdout.on('data', look);
    void exited.then((code) => reject(new Error(`the server exited (${code}) before printing its URL:\n${output}`)));
    setTimeout(() => reject(new Error(`the server printed no URL within 30 s:\n${output}`)), 30_000);
  });
  token = decodeURIComponent(new URL(loginUrl).hash.slice(1));
  return { url, loginUrl, output: () => output };
}

const cliChildren = new Set<ChildProcessWithoutNullStreams>();

/** Runs `lockstep <args> --server <url> --json` to its end; resolves with its parsed JSON output. */
async function lockstep(server: string, ...args: string[]): Promise<Record<string, unknown>> {
  const [command, argv] = tsxNode(CLI_MAIN, [...args, '--server', server, '--json']);
  // No --token: the CLI finds the local server's token in the runtime directory by itself.
  const child = spawn(command, argv, { stdio: 'pipe', env: childEnv() });
  cliChildren.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  cliChildren.delete(child);
  if (code !== 0) throw new Error(`lockstep ${args.join(' ')} exited with ${code}:\n${stdout}${stderr}`);
  try {
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    throw new Error(`lockstep ${args.join(' ')} printed no JSON document:\n${stdout}${stderr}`);
  }
}

/** A plain HTTP call to the REST API, as curl or another app would make it. */
async function rest(base: string, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body !== undefined && { 'Content-Type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// The dashboard's DOM, read through its data-testid attributes
// ---------------------------------------------------------------------------------------------

interface DashboardView {
  connection: string | undefined;
  pending: number;
  totals: { desired: number; running: number };
  workspaces: Record<string, { desired: number; running: number }>;
  tasks: Record<string, { title: string; status: string; priority: string; sessionCount: number; sessions: string[] }>;
  sessions: Record<string, { name: string; focused: boolean; tasks: Record<string, string> }>;
  focused: string[];
  nextOut: string | undefined;
  evicted: string[];
  terminals: Record<string, string>;
}

/** Everything the dashboard shows, as data. Runs in the page. */
function readDashboard(): DashboardView {
  const all = (selector: string, root: ParentNode = document) => [...root.querySelectorAll<HTMLElement>(selector)];
  const one = (selector: string, root: ParentNode = document) => root.querySelector<HTMLElement>(selector);
  const view: DashboardView = {
    connection: one('[data-testid=connection]')?.dataset['status'],
    pending: Number(one('[data-testid=pending-count]')?.dataset['pending']),
    totals: { desired: Number(one('[data-testid=total-desired]')?.textContent), running: Number(one('[data-testid=total-running]')?.textContent) },
    workspaces: {},
    tasks: {},
    sessions: {},
    focused: all('[data-testid=focus-tile]').map((tile) => tile.dataset['sessionId']!),
    nextOut: one('[data-testid=focus-tile][data-next-out=true]')?.dataset['sessionId'],
    evicted: all('[data-testid=eviction-notice]').map((notice) => notice.dataset['sessionId']!),
    terminals: {},
  };
  for (const row of all('[data-testid=workspace-row]')) {
    view.workspaces[row.dataset['workspaceId']!] = { desired: Number(row.dataset['desired']), running: Number(row.dataset['running']) };
  }
  for (const card of all('[data-testid=task-card]')) {
    view.tasks[card.dataset['taskId']!] = {
      title: one('[data-testid=task-title]', card)?.textContent ?? '',
      status: card.dataset['status']!,
      priority: (one('[data-testid=task-priority]', card) as HTMLSelectElement | null)?.value ?? '',
      sessionCount: Number(one('[data-testid=task-session-count]', card)?.dataset['count']),
      sessions: all('[data-testid=task-session]', card).map((chip) => chip.dataset['sessionId']!),
    };
  }
  for (const row of all('[data-testid=session-row]')) {
    const tasks: Record<string, string> = {};
    for (const chip of all('[data-testid=session-task]', row)) tasks[chip.dataset['taskId']!] = chip.dataset['status']!;
    view.sessions[row.dataset['sessionId']!] = { name: one('[data-testid=session-name]', row)?.textContent ?? '', focused: row.dataset['focused'] === 'true', tasks };
  }
  for (const pane of all('[data-testid=terminal-pane]')) view.terminals[pane.dataset['terminalId']!] = one('.xterm-rows', pane)?.textContent ?? '';
  return view;
}

interface Tab {
  name: string;
  page: Page;
  errors: string[];
}

/** Waits until `check` holds for what `tab` shows; on timeout, fails with what it showed last. */
async function until(tab: Tab, what: string, check: (view: DashboardView) => boolean): Promise<DashboardView> {
  const deadline = Date.now() + WAIT_MS;
  let view: DashboardView | undefined;
  for (;;) {
    view = await tab.page.evaluate(readDashboard);
    if (check(view)) return view;
    if (Date.now() > deadline) {
      const { terminals, ...rest } = view;
      throw new Error(`${tab.name} never showed ${what}; it showed:\n${JSON.stringify(rest, null, 2)}\nterminals: ${JSON.stringify(terminals)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Every tab shows it. */
const everywhere = (tabs: readonly Tab[], what: string, check: (view: DashboardView) => boolean) => Promise.all(tabs.map((tab) => until(tab, what, check)));

const byTitle = (view: DashboardView, title: string) => Object.entries(view.tasks).find(([, task]) => task.title === title);
const byName = (view: DashboardView, name: string) => Object.entries(view.sessions).find(([, session]) => session.name === name);

/** Opens the login URL the server printed: the page signs in and goes on to the dashboard at `/`. */
async function openTab(browser: Browser, url: string, name: string): Promise<Tab> {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
  const tab: Tab = { name, page, errors: [] };
  page.on('pageerror', (error) => tab.errors.push(error.message));
  page.on('console', (message) => {
    // The page has no favicon; nothing else may fail.
    if (message.type() === 'error' && !message.text().includes('404')) tab.errors.push(message.text());
  });
  await page.goto(url);
  await page.waitForURL((address) => address.pathname === '/');
  // The token is in no address the browser keeps: the login page took it out of the history.
  expect(page.url()).not.toContain(token);
  expect(page.url()).not.toContain('#');
  await until(tab, 'the connection online', (view) => view.connection === 'online');
  return tab;
}

// ---------------------------------------------------------------------------------------------

describe('reference server end to end', () => {
  it.skipIf(skipBrowser)(
    'two tabs, the CLI and the REST API change the state; every tab shows every change',
    async () => {
      requireChromium();
      const root = await mkdtemp(join(tmpdir(), 'lockstep-e2e-'));
      onTestFinished(() => rm(root, { recursive: true, force: true }));
      const home = join(root, 'project');
      await mkdir(home);
      runtimeDir = join(root, 'run');
      const server = await startServer(join(root, 'data'), home);
      onTestFinished(() => {
        for (const child of cliChildren) child.kill('SIGKILL');
      });
      const browser = await launchChromium();
      onTestFinished(() => browser.close());
      const tab1 = await openTab(browser, server.loginUrl, 'tab 1');
      const tab2 = await openTab(browser, server.loginUrl, 'tab 2');
      const tabs = [tab1, tab2];

      // --- Seed 000: cross-instance orchestration; global desired is the sum over workspaces ----
      await everywhere(tabs, 'global desired 0', (view) => view.totals.desired === 0 && Object.keys(view.workspaces).length === 0);
      // IDE 1 on machine B, through the CLI.
      await lockstep(server.url, 'orchestration', 'set-desired', 'machine-b/ide-1', '1');
      await everywhere(tabs, 'global desired 1', (view) => view.totals.desired === 1 && view.workspaces['machine-b/ide-1']?.desired === 1);
      // IDE 2 on machine A, through the REST API.
      await rest(server.url, 'PUT', `/api/orchestration/workspaces/${encodeURIComponent('machine-a/ide-2')}/desired`, { desired: 1 });
      await everywhere(tabs, 'global desired 2', (view) => view.totals.desired === 2 && view.workspaces['machine-a/ide-2']?.desired === 1);
      // IDE 3 on machine A, typed into tab 1.
      await tab1.page.fill('[data-testid=workspace-add-id]', 'machine-a/ide-3');
      await tab1.page.fill('[data-testid=workspace-add-desired]', '2');
      await tab1.page.click('[data-testid=workspace-add-submit]');
      await everywhere(tabs, 'global desired 4 = 1 + 1 + 2', (view) => view.totals.desired === 4 && view.workspaces['machine-a/ide-3']?.desired === 2);
      // Tab 2 raises IDE 2's desired with its + button, and records 3 agents running in IDE 3.
      const ide2 = tab2.page.locator('[data-testid=workspace-row][data-workspace-id="machine-a/ide-2"]');
      await ide2.locator('[data-testid=workspace-desired-inc]').click();
      const ide3Running = tab2.page.locator('[data-testid=workspace-row][data-workspace-id="machine-a/ide-3"] [data-testid=workspace-running-input]');
      await ide3Running.fill('3');
      await ide3Running.press('Enter');
      await everywhere(tabs, 'desired 5 and running 3', (view) => view.totals.desired === 5 && view.totals.running === 3 && view.workspaces['machine-a/ide-2']?.desired === 2);
      // Instance 1 closes: its workspace goes, and the totals with it.
      await tab1.page.locator('[data-testid=workspace-row][data-workspace-id="machine-b/ide-1"] [data-testid=workspace-remove]').click();
      await everywhere(tabs, 'global desired 4 without IDE 1', (view) => view.totals.desired === 4 && !('machine-b/ide-1' in view.workspaces));
      const orchestration = await rest(server.url, 'GET', '/api/orchestration');
      expect(orchestration['global']).toEqual({ desired: 4, running: 3 });

      // --- Seed 002, test scenario 1: CLI + UI -----------------------------------------------
      const created = await lockstep(server.url, 'task', 'create', 'Test task from CLI', '--priority', 'high');
      const cliTask = created['id'] as string;
      expect(cliTask).toMatch(/^task/);
      await everywhere(tabs, 'the task created by the CLI', (view) => view.tasks[cliTask]?.title === 'Test task from CLI' && view.tasks[cliTask]?.priority === 'high');

      // --- Seed 002, test scenario 2: two tabs ------------------------------------------------
      // In tab 1, work on the task: a session starts, linked to it.
      await tab1.page.locator(`[data-testid=task-card][data-task-id="${cliTask}"] [data-testid=task-start-session]`).click();
      const [tab2View] = await everywhere(
        [tab2],
        'the session tab 1 started, linked to the task',
        (view) => view.tasks[cliTask]?.sessionCount === 1 && view.tasks[cliTask]?.status === 'in_progress' && byName(view, 'Test task from CLI') !== undefined,
      );
      const [workSession] = byName(tab2View!, 'Test task from CLI')!;
      expect(tab2View!.sessions[workSession]!.tasks).toEqual({ [cliTask]: 'in_progress' });
      // In tab 2, close that session: it disappears from tab 1, and the task's count follows.
      await tab2.page.locator(`[data-testid=session-row][data-session-id="${workSession}"] [data-testid=session-delete]`).click();
      await everywhere(tabs, 'the session gone and the task unlinked', (view) => !(workSession in view.sessions) && view.tasks[cliTask]?.sessionCount === 0);

      // --- Seed 002, example 4 and test scenario 3: CLI links, an external API call completes ---
      await tab2.page.fill('[data-testid=session-create-name]', 'reviewer');
      await tab2.page.click('[data-testid=session-create-submit]');
      const [withReviewer] = await everywhere(tabs, 'the session created in tab 2', (view) => byName(view, 'reviewer') !== undefined);
      const [reviewer] = byName(withReviewer!, 'reviewer')!;
      await lockstep(server.url, 'session', 'add-task', reviewer, cliTask);
      await everywhere(tabs, 'the link made by the CLI, on both sides', (view) => view.sessions[reviewer]?.tasks[cliTask] !== undefined && view.tasks[cliTask]!.sessions.includes(reviewer));
      await rest(server.url, 'PATCH', `/api/tasks/${cliTask}`, { status: 'completed' });
      await everywhere(
        tabs,
        "the task completed by the API, on the board and in the session's task list",
        (view) => view.tasks[cliTask]?.status === 'completed' && view.sessions[reviewer]?.tasks[cliTask] === 'completed',
      );
      // A task from another app, by REST, and one typed into tab 1.
      const apiTask = (await rest(server.url, 'POST', '/api/tasks', { projectId: PROJECT_ID, title: 'New task from external app', priority: 'high' }))['id'] as string;
      await tab1.page.fill('[data-testid=task-create-title]', 'Write the release notes');
      await tab1.page.click('[data-testid=task-create-submit]');
      await everywhere(tabs, 'both new tasks', (view) => view.tasks[apiTask]?.title === 'New task from external app' && byTitle(view, 'Write the release notes') !== undefined);
      // Tab 2 moves the API's task to "blocked".
      await tab2.page.locator(`[data-testid=task-card][data-task-id="${apiTask}"] [data-testid=task-status]`).selectOption('blocked');
      await everywhere(tabs, 'the task blocked by tab 2', (view) => view.tasks[apiTask]?.status === 'blocked');

      // --- Seed 001: at most four focused; a fifth evicts the least active ---------------------
      // Four more sessions (each gets a shell on the server): from tab 1, the API and the CLI.
      for (const name of ['build', 'tests']) {
        await tab1.page.fill('[data-testid=session-create-name]', name);
        await tab1.page.click('[data-testid=session-create-submit]');
      }
      await rest(server.url, 'POST', '/api/sessions/agent-1', { name: 'agent-1', kind: 'agent' });
      await lockstep(server.url, 'session', 'create', '--id', 'agent-2', '--name', 'agent-2');
      const [allSessions] = await everywhere(tabs, 'five sessions', (view) => Object.keys(view.sessions).length === 5);
      const [build] = byName(allSessions!, 'build')!;
      const [tests] = byName(allSessions!, 'tests')!;

      // Focus four, from four places: tab 1, tab 2, the CLI, the API.
      await tab1.page.locator(`[data-testid=session-row][data-session-id="${build}"] [data-testid=session-focus]`).click();
      await everywhere(tabs, 'build focused', (view) => view.focused.join() === build);
      await tab2.page.locator(`[data-testid=session-row][data-session-id="${tests}"] [data-testid=session-focus]`).click();
      await everywhere(tabs, 'tests focused', (view) => view.focused.join() === [build, tests].join());
      await lockstep(server.url, 'focus', 'set', 'agent-1');
      await everywhere(tabs, 'agent-1 focused', (view) => view.focused.join() === [build, tests, 'agent-1'].join());
      await rest(server.url, 'PUT', '/api/focus', { projectId: PROJECT_ID, sessionId: 'agent-2', focused: true });
      await everywhere(tabs, 'four focused, build next out', (view) => view.focused.length === 4 && view.nextOut === build);

      // A command typed into build's terminal in tab 1 shows its output — in both tabs.
      const buildTerminal = tab1.page.locator(`[data-testid=focus-tile][data-session-id="${build}"] .xterm`);
      await until(tab1, "build's terminal live", (view) => (view.terminals[build] ?? '').includes('$') || (view.terminals[build] ?? '').includes('#'));
      await buildTerminal.click();
      await tab1.page.keyboard.type('echo lockstep-$((6 * 7))\n');
      await everywhere(tabs, "the command's output in build's terminal", (view) => (view.terminals[build] ?? '').includes('lockstep-42'));
      // Typing made build active: the least active is now tests, not the first focused.
      await everywhere(tabs, 'tests next out', (view) => view.nextOut === tests);

      // The fifth focus, from tab 2: tests is evicted, visibly, in both tabs.
      await tab2.page.locator(`[data-testid=session-row][data-session-id="${reviewer}"] [data-testid=session-focus]`).click();
      await everywhere(
        tabs,
        'tests evicted for reviewer',
        (view) =>
          view.focused.length === 4 &&
          view.focused.includes(reviewer) &&
          !view.focused.includes(tests) &&
          view.evicted.includes(tests) &&
          view.sessions[tests]?.focused === false &&
          view.sessions[build]?.focused === true,
      );
      const focus = await rest(server.url, 'GET', `/api/streams/focus/${PROJECT_ID}`);
      expect((focus['state'] as { focused: string[] }).focused).toEqual([build, 'agent-1', 'agent-2', reviewer]);

      // --- Every tab ends where the hub is, with nothing pending -------------------------------
      const tasks = (await rest(server.url, 'GET', `/api/tasks?projectId=${PROJECT_ID}`))['tasks'] as Array<{ id: string; status: string }>;
      for (const tab of tabs) {
        const view = await until(tab, 'nothing pending', (shown) => shown.pending === 0 && shown.connection === 'online');
        expect(Object.fromEntries(Object.entries(view.tasks).map(([id, task]) => [id, task.status]))).toEqual(Object.fromEntries(tasks.map((task) => [task.id, task.status])));
        expect(view.totals).toEqual({ desired: 4, running: 3 });
        expect(view.terminals[build]).toContain('lockstep-42');
        expect(tab.errors).toEqual([]);
      }

      // The README's picture: tab 1 as it is now — written to docs/ only when asked
      // (LOCKSTEP_UPDATE_SCREENSHOT=1), so that a test run leaves the tree as it was.
      await tab1.page.mouse.click(5, 5); // out of the terminal: no focus ring, no cursor highlight
      const screenshot = process.env['LOCKSTEP_UPDATE_SCREENSHOT'] === '1' ? SCREENSHOT : join(root, 'dashboard.png');
      await mkdir(fileURLToPath(new URL('.', pathToFileURL(screenshot))), { recursive: true });
      await tab1.page.screenshot({ path: screenshot, fullPage: true });
      // A relayout (the full-page capture resizes the viewport) never squeezes a terminal: the output stays.
      await new Promise((resolve) => setTimeout(resolve, 500));
      for (const tab of tabs) expect((await tab.page.evaluate(readDashboard)).terminals[build], tab.name).toContain('lockstep-42');
    },
    180_000,
  );
});

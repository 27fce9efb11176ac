import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from '@lockstep/client';
import { orchestrationDomain } from '@lockstep/core';
import { launchChromium, requireChromium, skipWithoutChromium } from '@lockstep/tests/chromium';
import { webSocketConnector } from '@lockstep/ws';
import type { Browser } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PROJECT_ID, WS_PATH } from './contract.js';
import {
  DASHBOARD_VIEWPORT as VIEWPORT,
  byName,
  byTitle,
  everywhere,
  measureLayout,
  measureLeasedBadge,
  openTab as openDashboard,
  readDashboard,
  until,
} from './dashboardPage.js';
import { spawnReferenceServer, tsxNode, type ServerProcess } from './serverProcess.js';

/**
 * The reference server end to end, as a new user meets it: the server process `pnpm start` runs,
 * two dashboard tabs in headless Chromium (a 1400×1000 window), the `lockstep` CLI as a process,
 * an IDE extension's lockstep/1 client and plain HTTP calls to the REST API each change the state,
 * and every tab shows every change — asserted on the DOM. The scenarios are the field notes':
 * seed 002's three multi-client tests, in the default project and in another one opened with the
 * project picker and with `?project=`; seed 000's cross-instance orchestration example (global
 * desired is the sum); seed 001's fifth focus evicting the least active session; a command typed
 * into a terminal shows its output; and the dashboard's own promises: the terminals stay in the
 * window beside a full task board, the layout switch (remembered), no badge cut off, a favicon.
 *
 * The README's pictures are not taken here (a test run leaves the tree as it was): `pnpm
 * screenshots` (screenshots.ts) takes them.
 */

const skipBrowser = skipWithoutChromium('e2e.test');

const CLI_MAIN = fileURLToPath(new URL('../../../packages/cli/src/main.ts', import.meta.url));
/** The scripted agent seed 003's profile runs. */
const AGENT = fileURLToPath(new URL('../agent/agent.mjs', import.meta.url));
/** Seed 002's other project: the app posts its task there. */
const OTHER_PROJECT = 'proj_123';

// ---------------------------------------------------------------------------------------------
// Processes: the server as `pnpm start` runs it, and the CLI
// ---------------------------------------------------------------------------------------------

/** Where the server leaves its token for local clients (the CLI finds it there): the test's own. */
let runtimeDir = '';
/** The token the server generated, for the plain HTTP calls. */
let token = '';

/** The environment of the server and CLI processes: no token of the developer's, the test's runtime directory. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const { LOCKSTEP_TOKEN: _, ...env } = process.env;
  return { ...env, LOCKSTEP_RUNTIME_DIR: runtimeDir, ...extra };
}

/** Opens a tab signed in with the server's login URL. */
const openTab = (browser: Browser, url: string, name: string) => openDashboard(browser, url, name, token);

/** Starts the reference server (what `pnpm start` runs, with `args`) on a free port; stops it when the test ends. */
async function startServer(dataDir: string, cwd: string, args: readonly string[] = []): Promise<ServerProcess> {
  // The terminals run bash with HOME (inherited by them) in the test's directory: no user rc files,
  // which on a developer's machine may print anything or block (a shell plugin waiting on a lock).
  const server = await spawnReferenceServer({ dataDir, cwd, env: childEnv({ SHELL: '/bin/bash', HOME: cwd }), args });
  onTestFinished(() => server.stop());
  token = server.token;
  return server;
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
      // IDE 2 on machine A, through its extension's lockstep/1 client, which holds a lease on the entry
      // (the entry goes when the IDE does): the dashboard marks it "leased".
      const ide2Client = createClient({
        connect: webSocketConnector(`${server.url.replace(/^http/, 'ws')}${WS_PATH}`, { token }),
        clientId: 'machine-a-ide-2',
      });
      onTestFinished(() => ide2Client.close());
      await ide2Client
        .stream(orchestrationDomain, 'default')
        .dispatch({ type: 'workspace.setDesired', payload: { workspaceId: 'machine-a/ide-2', desired: 1, lease: true } });
      await everywhere(tabs, 'global desired 2', (view) => view.totals.desired === 2 && view.workspaces['machine-a/ide-2']?.desired === 1);
      // The badge is whole beside a path-like id, in a side column of a 1400-pixel window.
      const badge = await tab1.page.evaluate(measureLeasedBadge, 'machine-a/ide-2');
      expect(badge?.text).toBe('leased');
      expect(badge!.cell.scrollWidth).toBeLessThanOrEqual(badge!.cell.clientWidth);
      expect(badge!.badge.scrollWidth).toBeLessThanOrEqual(badge!.badge.clientWidth);
      expect(badge!.badge.left).toBeGreaterThanOrEqual(badge!.cell.left);
      expect(badge!.badge.right).toBeLessThanOrEqual(badge!.cell.right);
      expect(badge!.badge.bottom).toBeLessThanOrEqual(badge!.cell.bottom);
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
      await everywhere(
        tabs,
        'desired 5 and running 3',
        (view) => view.totals.desired === 5 && view.totals.running === 3 && view.workspaces['machine-a/ide-2']?.desired === 2,
      );
      // Instance 1 closes: its workspace goes, and the totals with it.
      await tab1.page.locator('[data-testid=workspace-row][data-workspace-id="machine-b/ide-1"] [data-testid=workspace-remove]').click();
      await everywhere(tabs, 'global desired 4 without IDE 1', (view) => view.totals.desired === 4 && !('machine-b/ide-1' in view.workspaces));
      const orchestration = await rest(server.url, 'GET', '/api/orchestration');
      expect(orchestration['global']).toEqual({ desired: 4, running: 3 });

      // --- Seed 002, test scenario 1: CLI + UI -----------------------------------------------
      const created = await lockstep(server.url, 'task', 'create', 'Test task from CLI', '--priority', 'high');
      const cliTask = created['id'] as string;
      expect(cliTask).toMatch(/^task/);
      await everywhere(
        tabs,
        'the task created by the CLI',
        (view) => view.tasks[cliTask]?.title === 'Test task from CLI' && view.tasks[cliTask]?.priority === 'high',
      );

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
      await everywhere(
        tabs,
        'the link made by the CLI, on both sides',
        (view) => view.sessions[reviewer]?.tasks[cliTask] !== undefined && view.tasks[cliTask]!.sessions.includes(reviewer),
      );
      await rest(server.url, 'PATCH', `/api/tasks/${cliTask}`, { status: 'completed' });
      await everywhere(
        tabs,
        "the task completed by the API, on the board and in the session's task list",
        (view) => view.tasks[cliTask]?.status === 'completed' && view.sessions[reviewer]?.tasks[cliTask] === 'completed',
      );
      // A task from another app, by REST, and one typed into tab 1.
      const apiTask = (await rest(server.url, 'POST', '/api/tasks', { projectId: PROJECT_ID, title: 'New task from external app', priority: 'high' }))[
        'id'
      ] as string;
      await tab1.page.fill('[data-testid=task-create-title]', 'Write the release notes');
      await tab1.page.click('[data-testid=task-create-submit]');
      await everywhere(
        tabs,
        'both new tasks',
        (view) => view.tasks[apiTask]?.title === 'New task from external app' && byTitle(view, 'Write the release notes') !== undefined,
      );
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
        expect(Object.fromEntries(Object.entries(view.tasks).map(([id, task]) => [id, task.status]))).toEqual(
          Object.fromEntries(tasks.map((task) => [task.id, task.status])),
        );
        expect(view.totals).toEqual({ desired: 4, running: 3 });
        expect(view.terminals[build]).toContain('lockstep-42');
        expect(tab.errors).toEqual([]);
      }

      // --- The dashboard: terminals in the window beside a full board; the layout switch ---------
      // Ten more pending tasks (an agent filing its plan): the board is longer than its place.
      for (let index = 1; index <= 10; index += 1)
        await rest(server.url, 'POST', '/api/tasks', { projectId: PROJECT_ID, title: `Backlog item ${index}`, priority: 'low' });
      await everywhere(tabs, 'the ten new tasks', (view) => Object.values(view.tasks).filter((task) => task.status === 'pending').length >= 10);
      const both = await tab1.page.evaluate(measureLayout);
      expect(both.pending).toBeGreaterThanOrEqual(10);
      expect(both.boardScrolls).toBe(true);
      expect(both.pageScrolls).toBe(false);
      expect(both.panes.map((pane) => pane.id).sort()).toEqual([build, 'agent-1', 'agent-2', reviewer].sort());
      for (const pane of both.panes) {
        expect(pane.top, `${pane.id} in the window`).toBeGreaterThanOrEqual(0);
        expect(pane.bottom, `${pane.id} in the window`).toBeLessThanOrEqual(VIEWPORT.height);
        expect(pane.right, `${pane.id} in the window`).toBeLessThanOrEqual(VIEWPORT.width);
        expect(pane.height, `${pane.id} tall enough to read`).toBeGreaterThanOrEqual(120);
      }
      // Board only, remembered across a reload (in this browser: tab 2's is its own).
      await tab1.page.click('[data-testid=layout-board]');
      await until(tab1, 'the board alone', (view) => view.layout === 'board' && Object.keys(view.terminals).length === 0);
      await tab1.page.reload();
      await until(
        tab1,
        'the board alone after a reload',
        (view) => view.connection === 'online' && view.layout === 'board' && Object.keys(view.terminals).length === 0 && view.boardLoaded,
      );
      expect((await tab2.page.evaluate(readDashboard)).layout).toBe('both');
      // Terminals only: the four panes share the whole area.
      await tab1.page.click('[data-testid=layout-terminals]');
      await until(
        tab1,
        'the terminals alone',
        (view) => view.layout === 'terminals' && Object.keys(view.terminals).length === 4 && Object.keys(view.tasks).length === 0,
      );
      const terminalsOnly = await tab1.page.evaluate(measureLayout);
      expect(terminalsOnly.board).toBe(false);
      for (const pane of terminalsOnly.panes) expect(pane.bottom).toBeLessThanOrEqual(VIEWPORT.height);
      expect(Math.min(...terminalsOnly.panes.map((pane) => pane.height))).toBeGreaterThan(Math.min(...both.panes.map((pane) => pane.height)));
      // Both again: build's terminal re-attached, its output from the server's scrollback.
      await tab1.page.click('[data-testid=layout-both]');
      await until(
        tab1,
        "both, with build's output",
        (view) => view.layout === 'both' && (view.terminals[build] ?? '').includes('lockstep-42') && Object.keys(view.tasks).length > 10,
      );

      // The page's icon, from the dashboard's own server.
      expect(
        await tab1.page.evaluate(async () => {
          const icons = await Promise.all(['/favicon.ico', document.querySelector<HTMLLinkElement>('link[rel=icon]')!.href].map((href) => fetch(href)));
          return icons.map((icon) => `${icon.status} ${icon.headers.get('content-type')}`);
        }),
      ).toEqual(['200 image/svg+xml', '200 image/svg+xml']);

      // --- Seed 002 across projects: the picker, ?project=, a task from another app ------------
      // Another app posts its task to proj_123 (the seed's request, as written).
      const appTask = (await rest(server.url, 'POST', '/api/tasks', { projectId: OTHER_PROJECT, title: 'Refactor authentication service', priority: 'high' }))[
        'id'
      ] as string;
      // Tab 1 opens it with the project picker, which lists the projects the server holds.
      await tab1.page.focus('[data-testid=project-select]');
      await until(tab1, 'proj_123 among the projects', (view) => view.projectChoices.includes(OTHER_PROJECT));
      await tab1.page.selectOption('[data-testid=project-select]', OTHER_PROJECT);
      const [inOther] = await everywhere(
        [tab1],
        "proj_123's board",
        (view) => view.project === OTHER_PROJECT && view.addressProject === OTHER_PROJECT && view.boardLoaded && appTask in view.tasks,
      );
      expect(Object.keys(inOther!.tasks)).toEqual([appTask]); // only proj_123's: none of the default board's
      expect(inOther!.tasks[appTask]).toMatchObject({ title: 'Refactor authentication service', priority: 'high', status: 'pending' });
      expect(inOther!.noTerminals).toBe(true); // its sessions have no terminal on this server
      // Tab 2 opens it from a link.
      await tab2.page.goto(`${server.url}/?project=${OTHER_PROJECT}`);
      await until(tab2, 'proj_123 from the address', (view) => view.connection === 'online' && view.project === OTHER_PROJECT && appTask in view.tasks);
      // Both follow what any client does there: the CLI adds a task, tab 2 blocks the app's, the API completes it.
      const cliInOther = (await lockstep(server.url, 'task', 'create', 'Rotate the signing keys', '--project', OTHER_PROJECT))['id'] as string;
      await everywhere(tabs, "the CLI's task in proj_123", (view) => view.tasks[cliInOther]?.title === 'Rotate the signing keys');
      await tab2.page.locator(`[data-testid=task-card][data-task-id="${appTask}"] [data-testid=task-status]`).selectOption('blocked');
      await everywhere(tabs, 'the app task blocked by tab 2', (view) => view.tasks[appTask]?.status === 'blocked');
      await rest(server.url, 'PATCH', `/api/tasks/${appTask}?projectId=${OTHER_PROJECT}`, { status: 'completed' });
      await everywhere(tabs, 'the app task completed by the API', (view) => view.tasks[appTask]?.status === 'completed');
      const otherTasks = (await rest(server.url, 'GET', `/api/tasks?projectId=${OTHER_PROJECT}`))['tasks'] as Array<{ id: string; status: string }>;
      expect(Object.fromEntries(otherTasks.map((task) => [task.id, task.status]))).toEqual({ [appTask]: 'completed', [cliInOther]: 'pending' });
      // A project nobody has written to yet, typed into tab 1; a task there lands in its stream.
      await tab1.page.selectOption('[data-testid=project-select]', { label: 'Open another…' });
      await tab1.page.fill('[data-testid=project-input]', 'proj_new');
      await tab1.page.click('[data-testid=project-open]');
      await until(
        tab1,
        'the empty proj_new',
        (view) => view.project === 'proj_new' && view.addressProject === 'proj_new' && view.boardLoaded && Object.keys(view.tasks).length === 0,
      );
      await tab1.page.fill('[data-testid=task-create-title]', 'First task of a new project');
      await tab1.page.click('[data-testid=task-create-submit]');
      await until(tab1, 'the task in proj_new', (view) => byTitle(view, 'First task of a new project') !== undefined && view.pending === 0);
      expect(((await rest(server.url, 'GET', '/api/tasks?projectId=proj_new'))['tasks'] as Array<{ title: string }>).map((task) => task.title)).toEqual([
        'First task of a new project',
      ]);
      // Back returns to proj_123; the picker now lists proj_new too; choosing default drops ?project=.
      await tab1.page.goBack();
      await until(
        tab1,
        'proj_123 again',
        (view) =>
          view.project === OTHER_PROJECT && view.addressProject === OTHER_PROJECT && cliInOther in view.tasks && view.projectChoices.includes('proj_new'),
      );
      await tab1.page.selectOption('[data-testid=project-select]', PROJECT_ID);
      await until(
        tab1,
        'the default project again',
        (view) => view.project === PROJECT_ID && view.addressProject === null && cliTask in view.tasks && !(appTask in view.tasks) && !view.noTerminals,
      );
      // An address naming no project id shows the default project, and says so.
      await tab2.page.goto(`${server.url}/?project=${encodeURIComponent('../etc')}`);
      await until(
        tab2,
        'the default project for a bad ?project=',
        (view) => view.connection === 'online' && view.project === PROJECT_ID && cliTask in view.tasks,
      );
      expect(await tab2.page.locator('[data-testid=project-invalid]').textContent()).toContain('../etc');

      // A relayout (a smaller window, then the full one) never squeezes a terminal: the output stays.
      await tab1.page.setViewportSize({ width: 1000, height: 700 });
      await tab1.page.setViewportSize(VIEWPORT);
      await until(tab1, "build's output after a relayout", (view) => (view.terminals[build] ?? '').includes('lockstep-42'));
      for (const tab of tabs) expect(tab.errors).toEqual([]);
    },
    180_000,
  );

  it.skipIf(skipBrowser)(
    'seed 003 from the dashboard: a session running the picked profile, started on a task, gets its prompt',
    async () => {
      requireChromium();
      const root = await mkdtemp(join(tmpdir(), 'lockstep-e2e-'));
      onTestFinished(() => rm(root, { recursive: true, force: true }));
      const home = join(root, 'project');
      await mkdir(home);
      runtimeDir = join(root, 'run');
      const server = await startServer(join(root, 'data'), home, [
        '--profile',
        `agent:argv=${process.execPath} ${AGENT}`,
        '--profile',
        `agent-stay:argv=${process.execPath} ${AGENT} --stay`,
      ]);
      const browser = await launchChromium();
      onTestFinished(() => browser.close());
      const tab = await openTab(browser, server.loginUrl, 'tab');
      const prompt = 'Summarise the README in three lines';
      const taskId = (await rest(server.url, 'POST', '/api/tasks', { title: 'Summarise the README', prompt }))['id'] as string;
      await until(tab, 'the task', (view) => taskId in view.tasks);

      // The picker offers the server's profiles, its default first; pick the agent.
      const picker = tab.page.locator('[data-testid=session-create-profile]');
      await picker.waitFor();
      expect(await picker.locator('option').allTextContents()).toEqual(['shell', 'agent', 'agent-stay']);
      expect(await picker.inputValue()).toBe('shell');
      await picker.selectOption('agent');
      await tab.page.locator(`[data-testid=task-card][data-task-id="${taskId}"] [data-testid=task-start-session]`).click();
      // Confirmed, not just optimistic: the dashboard shows the link before the server has the session.
      const [withSession] = await everywhere(
        [tab],
        'the agent session, linked and confirmed',
        (view) => view.tasks[taskId]?.sessionCount === 1 && view.pending === 0,
      );
      const sessionId = withSession!.tasks[taskId]!.sessions[0]!;
      const row = tab.page.locator(`[data-testid=session-row][data-session-id="${sessionId}"]`);
      expect(await row.locator('[data-testid=session-profile]').textContent()).toBe('agent');
      // The session records the profile and the task's prompt, and the agent got it: its output, then its exit.
      const sessions = (await rest(server.url, 'GET', '/api/sessions'))['sessions'] as Array<{ id: string; profile?: string; prompt?: string }>;
      expect(sessions.find((session) => session.id === sessionId)).toMatchObject({ profile: 'agent', prompt });
      await row.locator('[data-testid=session-focus]').click();
      await until(
        tab,
        "the agent's output",
        (view) =>
          (view.terminals[sessionId] ?? '').includes(`prompt from argv: ${JSON.stringify(prompt)}`) &&
          (view.terminals[sessionId] ?? '').includes('[tool_call_start]'),
      );
      await tab.page.waitForFunction(
        (id) => document.querySelector(`[data-testid=session-row][data-session-id="${id}"] [data-testid=session-status]`)?.textContent === 'exited (0)',
        sessionId,
      );
      // The top bar's daemon status (`daemon.daemonStatus` over the socket) follows: nothing runs any more.
      await tab.page.waitForFunction(() => document.querySelector('[data-testid=daemon-status]')?.getAttribute('data-active') === '0');
      expect(await row.locator('[data-testid=session-stop]').count()).toBe(0);

      // The profile picked is remembered in this browser.
      await tab.page.reload();
      await until(tab, 'the dashboard again', (view) => view.connection === 'online' && view.boardLoaded);
      await tab.page.locator('[data-testid=session-create-profile]').waitFor();
      expect(await tab.page.locator('[data-testid=session-create-profile]').inputValue()).toBe('agent');

      // A session that stays: the daemon status counts it, and its Stop button (`daemon.stopSession`) ends it.
      await tab.page.locator('[data-testid=session-create-profile]').selectOption('agent-stay');
      await tab.page.fill('[data-testid=session-create-name]', 'stayer');
      await tab.page.click('[data-testid=session-create-submit]');
      const [withStayer] = await everywhere([tab], 'the staying session', (view) => byName(view, 'stayer') !== undefined && view.pending === 0);
      const [stayerId] = byName(withStayer!, 'stayer')!;
      await tab.page.waitForFunction(
        (id) => document.querySelector(`[data-testid=session-row][data-session-id="${id}"] [data-testid=session-status]`)?.textContent === 'running',
        stayerId,
      );
      await tab.page.waitForFunction(() => document.querySelector('[data-testid=daemon-status]')?.getAttribute('data-active') === '1');
      const stayer = tab.page.locator(`[data-testid=session-row][data-session-id="${stayerId}"]`);
      await stayer.locator('[data-testid=session-stop]').click();
      // SIGHUP ends node: 128 + 1.
      await tab.page.waitForFunction(
        (id) => document.querySelector(`[data-testid=session-row][data-session-id="${id}"] [data-testid=session-status]`)?.textContent === 'exited (129)',
        stayerId,
      );
      await tab.page.waitForFunction(() => document.querySelector('[data-testid=daemon-status]')?.getAttribute('data-active') === '0');
      await stayer.locator('[data-testid=session-stop]').waitFor({ state: 'detached' });
      expect(tab.errors).toEqual([]);
    },
    120_000,
  );
});

import type { Browser, Page } from 'playwright-core';
import { expect } from 'vitest';

/**
 * The dashboard as the browser tests see it: what a tab shows, read through its `data-testid`
 * attributes (src/dashboard/README.md lists them) into plain data, where its panes sit in the
 * window, and waiting until a tab shows something.
 */

/** The window the dashboard must fit: terminals in view beside a full board. */
export const DASHBOARD_VIEWPORT = { width: 1400, height: 1000 };
const WAIT_MS = 15_000;

export interface DashboardView {
  connection: string | undefined;
  /** The project picked (the picker's), and the `?project=` of the address. */
  project: string | undefined;
  addressProject: string | null;
  /** The projects the picker offers. */
  projectChoices: string[];
  layout: string | undefined;
  /** The task board is loaded (not "Loading…"). */
  boardLoaded: boolean;
  /** The "no terminals in this project" panel is shown instead of the focus grid. */
  noTerminals: boolean;
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
export function readDashboard(): DashboardView {
  const all = (selector: string, root: ParentNode = document) => [...root.querySelectorAll<HTMLElement>(selector)];
  const one = (selector: string, root: ParentNode = document) => root.querySelector<HTMLElement>(selector);
  const view: DashboardView = {
    connection: one('[data-testid=connection]')?.dataset['status'],
    project: one('[data-testid=project-picker]')?.dataset['project'],
    addressProject: new URLSearchParams(location.search).get('project'),
    projectChoices: all('[data-testid=project-option]').map((option) => (option as HTMLOptionElement).value),
    layout: one('[data-testid=main]')?.dataset['layout'],
    boardLoaded: one('[data-testid=task-count]') !== null && one('[data-testid=task-count]')?.textContent !== 'Loading…',
    noTerminals: one('[data-testid=no-terminals]') !== null,
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
    view.sessions[row.dataset['sessionId']!] = {
      name: one('[data-testid=session-name]', row)?.textContent ?? '',
      focused: row.dataset['focused'] === 'true',
      tasks,
    };
  }
  for (const pane of all('[data-testid=terminal-pane]')) view.terminals[pane.dataset['terminalId']!] = one('.xterm-rows', pane)?.textContent ?? '';
  return view;
}

/** Where the terminals and the board are in the window. Runs in the page. */
export function measureLayout() {
  const columns = document.querySelector<HTMLElement>('[data-testid=task-columns]');
  return {
    window: { width: innerWidth, height: innerHeight },
    /** The page itself scrolls (it should not: its columns do). */
    pageScrolls: document.documentElement.scrollHeight > innerHeight,
    pending: document.querySelectorAll('[data-testid=task-column][data-status=pending] [data-testid=task-card]').length,
    /** The board holds more than it shows: it scrolls inside. */
    boardScrolls: columns !== null && columns.scrollHeight > columns.clientHeight,
    board: document.querySelector('[data-testid=task-board]') !== null,
    panes: [...document.querySelectorAll<HTMLElement>('[data-testid=terminal-pane]')].map((pane) => {
      const { top, bottom, left, right, height } = pane.getBoundingClientRect();
      return { id: pane.dataset['terminalId'], top, bottom, left, right, height };
    }),
  };
}

/** A workspace row's "leased" badge and its cell: sizes and boxes. Runs in the page. */
export function measureLeasedBadge(workspaceId: string) {
  const row = [...document.querySelectorAll<HTMLElement>('[data-testid=workspace-row]')].find((element) => element.dataset['workspaceId'] === workspaceId);
  const cell = row?.querySelector<HTMLElement>('[data-testid=workspace-id]');
  const badge = cell?.querySelector<HTMLElement>('[data-testid=workspace-leased]');
  if (!cell || !badge) return undefined;
  const box = (element: HTMLElement) => {
    const { left, right, top, bottom } = element.getBoundingClientRect();
    return { left, right, top, bottom };
  };
  return {
    text: badge.textContent,
    cell: { ...box(cell), scrollWidth: cell.scrollWidth, clientWidth: cell.clientWidth },
    badge: { ...box(badge), scrollWidth: badge.scrollWidth, clientWidth: badge.clientWidth },
  };
}

export interface Tab {
  name: string;
  page: Page;
  errors: string[];
}

/** Waits until `check` holds for what `tab` shows; on timeout, fails with what it showed last. */
export async function until(tab: Tab, what: string, check: (view: DashboardView) => boolean): Promise<DashboardView> {
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
export const everywhere = (tabs: readonly Tab[], what: string, check: (view: DashboardView) => boolean) =>
  Promise.all(tabs.map((tab) => until(tab, what, check)));

export const byTitle = (view: DashboardView, title: string) => Object.entries(view.tasks).find(([, task]) => task.title === title);
export const byName = (view: DashboardView, name: string) => Object.entries(view.sessions).find(([, session]) => session.name === name);

/**
 * Opens the login URL the server printed in a new browser context: the page signs in (with `token`,
 * which must then be in no address the browser keeps) and goes on to the dashboard at `/`.
 */
export async function openTab(browser: Browser, url: string, name: string, token: string): Promise<Tab> {
  const page = await browser.newPage({ viewport: DASHBOARD_VIEWPORT });
  const tab: Tab = { name, page, errors: [] };
  page.on('pageerror', (error) => tab.errors.push(error.message));
  // Nothing may fail: no script error, no request answered with an error (a missing favicon included).
  page.on('console', (message) => {
    if (message.type() === 'error') tab.errors.push(`${message.text()} (${message.location().url})`);
  });
  await page.goto(url);
  await page.waitForURL((address) => address.pathname === '/');
  // The token is in no address the browser keeps: the login page took it out of the history.
  expect(page.url()).not.toContain(token);
  expect(page.url()).not.toContain('#');
  await until(tab, 'the connection online', (view) => view.connection === 'online');
  return tab;
}

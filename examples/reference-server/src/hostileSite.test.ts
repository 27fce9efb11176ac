import { spawn, spawnSync } from 'node:child_process';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TasksState } from '@lockstep/core';
import { launchChromium, requireChromium, skipWithoutChromium } from '@lockstep/tests/chromium';
import type { Browser, BrowserContext } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startReferenceServer, type ReferenceServer } from './server.js';
import { TEST_TOKEN, startTestServer, until } from './testing.js';

/**
 * Issue 17's hostile-site suite, in real headless Chromium. The victim's browser signs in to the
 * reference server through its login URL (so it holds the cookie: the realistic CSRF case), then
 * pages of another origin — another local port, and a non-loopback name (`evil.example`, mapped to
 * loopback by Chromium's resolver rules) — try everything a web page can: a cross-site WebSocket,
 * `fetch` in no-cors and cors mode with and without a body, text/plain form posts with an empty and a
 * non-empty body, an `EventSource`, and framing the dashboard and typing into it. Then DNS rebinding:
 * `evil.example` on the server's own port. Every attempt must fail: each page records what it saw,
 * a tap on the server records that each request reached it and what it answered, the tasks stream
 * must not move and no terminal may start. A control at the end — the signed-in dashboard on the
 * server's own origin creating a session and a task by typing — shows these checks see an attack
 * that works. The second case runs the same inside a network namespace with only loopback, the
 * server bound to 0.0.0.0; this file is also that case's child process (see {@link childMain}).
 */

const CHILD_ENV = 'LOCKSTEP_HOSTILE_SITE_CHILD';
const RESULT_PREFIX = 'HOSTILE_SITE_RESULT ';
const EVIL_NAME = 'evil.example';
const STREAM = 'tasks/default';
const SHELL = { file: '/bin/sh', args: [] };
const inCi = Boolean(process.env['CI']);

// ---------------------------------------------------------------------------------------------
// The hostile pages: plain JavaScript, served by the test's own HTTP server (another origin)
// ---------------------------------------------------------------------------------------------

const HOSTILE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Free kittens</title></head>
<body><h1>Free kittens</h1><script src="/hostile.js"></script></body></html>
`;

/**
 * Runs every attempt in turn against `?target=` and records what the page could see of each in
 * `window.hostile.results`; `?rebound` adds what a page that DNS rebinding made same-origin can do.
 * A plain string (no transpiler helpers), with no template literals inside.
 */
const HOSTILE_SCRIPT = String.raw`'use strict';
(() => {
  const params = new URLSearchParams(location.search);
  const target = params.get('target');
  const rebound = params.has('rebound');
  const api = target + '/api';
  const results = [];
  const hostile = (window.hostile = { results, done: false });
  let sinks = 0;

  const within = (ms, promise) =>
    Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve({ outcome: 'no answer within ' + ms + ' ms' }), ms))]);

  const webSocket = (url) =>
    new Promise((resolve) => {
      const answers = [];
      let opened = false;
      let socket;
      try {
        socket = new WebSocket(url, ['lockstep.v1.json']);
      } catch (error) {
        resolve({ outcome: 'threw', detail: String(error) });
        return;
      }
      socket.onopen = () => {
        opened = true;
        socket.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'hello', params: { protocol: 1 } }));
        const command = { id: 'evil-ws-command', stream: 'tasks/default', type: 'session.create', payload: { id: 'evil_ws', name: 'evil' } };
        socket.send(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'command', params: command }));
      };
      socket.onmessage = (event) => {
        answers.push(String(event.data).slice(0, 300));
        if (answers.length >= 2) socket.close();
      };
      socket.onclose = (event) => resolve({ outcome: opened ? 'opened' : 'refused', closeCode: event.code, answers });
    });

  const request = async (url, init) => {
    try {
      const answer = await fetch(url, init);
      if (answer.type === 'opaque') return { outcome: 'opaque' };
      return { outcome: 'read', status: answer.status, detail: (await answer.text()).slice(0, 300) };
    } catch (error) {
      return { outcome: 'blocked', detail: String(error) };
    }
  };

  // A text/plain form into a hidden frame of its own; its answer is another origin's and cannot be read.
  const form = (action, fields) =>
    new Promise((resolve) => {
      const name = 'sink' + ++sinks;
      const frame = document.createElement('iframe');
      frame.name = name;
      frame.style.display = 'none';
      document.body.append(frame);
      const element = document.createElement('form');
      element.method = 'POST';
      element.enctype = 'text/plain';
      element.action = action;
      element.target = name;
      for (const [key, value] of fields) {
        const input = document.createElement('input');
        input.type = 'hidden';
        input.name = key;
        input.value = value;
        element.append(input);
      }
      document.body.append(element);
      frame.addEventListener('load', () => {
        let readable = false;
        try {
          readable = frame.contentDocument !== null && frame.contentDocument.body !== null && frame.contentDocument.body.textContent.length > 0;
        } catch {}
        resolve({ outcome: readable ? 'answer readable' : 'answer unreadable' });
      });
      element.submit();
    });

  const eventSource = (url, withCredentials) =>
    new Promise((resolve) => {
      const source = new EventSource(url, { withCredentials });
      let opened = false;
      let events = 0;
      const finish = (outcome) => {
        source.close();
        resolve({ outcome, events });
      };
      source.onopen = () => (opened = true);
      source.onmessage = () => {
        events++;
        finish('event received');
      };
      source.addEventListener('snapshot', () => {
        events++;
        finish('event received');
      });
      source.onerror = () => {
        if (source.readyState === EventSource.CLOSED || !opened) finish(opened ? 'opened, then closed' : 'refused');
      };
    });

  const frame = (url) =>
    new Promise((resolve) => {
      const element = document.createElement('iframe');
      element.id = 'dashboard';
      element.src = url;
      element.width = '1200';
      element.height = '800';
      element.addEventListener('load', () => {
        let readable = false;
        try {
          readable = element.contentDocument !== null;
        } catch {}
        resolve({ outcome: readable ? 'frame readable' : 'frame loaded, unreadable' });
      });
      document.body.append(element);
    });

  const json = JSON.stringify;
  const attempts = [
    ['websocket', () => webSocket(target.replace(/^http/, 'ws') + '/lockstep')],
    ['fetch no-cors POST /api/sessions text/plain JSON', () => request(api + '/sessions', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: json({ name: 'x' }) })],
    ['fetch no-cors POST /api/sessions empty', () => request(api + '/sessions', { method: 'POST', mode: 'no-cors', credentials: 'include' })],
    ['fetch no-cors POST /api/tasks text/plain JSON', () => request(api + '/tasks', { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: json({ title: 'x' }) })],
    ['fetch cors POST /api/sessions credentials', () => request(api + '/sessions', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'text/plain' }, body: json({ name: 'x' }) })],
    ['form POST /api/sessions empty', () => form(api + '/sessions', [])],
    ['form POST /api/sessions JSON', () => form(api + '/sessions', [['{"name":"x","pad":"', '"}']])],
    ['form POST /api/tasks empty', () => form(api + '/tasks', [])],
    ['form POST /api/tasks JSON', () => form(api + '/tasks', [['{"title":"x","pad":"', '"}']])],
    ['eventsource', () => eventSource(api + '/streams/tasks/default', true)],
  ];
  if (rebound) {
    // Same-origin now: a JSON body and a custom header need no preflight, and answers are readable.
    attempts.push(
      ['fetch GET /api/tasks', () => request(api + '/tasks', { credentials: 'include' })],
      ['fetch POST /api/sessions JSON', () => request(api + '/sessions', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json', 'X-Lockstep-Request': '1' }, body: json({ name: 'x' }) })],
      ['fetch POST /api/tasks JSON', () => request(api + '/tasks', { method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: json({ title: 'x' }) })],
    );
  }
  attempts.push(['iframe /', () => frame(target + '/')]);

  (async () => {
    for (const [attempt, run] of attempts) {
      try {
        results.push({ attempt, ...(await within(10000, run())) });
      } catch (error) {
        results.push({ attempt, outcome: 'threw', detail: String(error) });
      }
    }
  })().finally(() => (hostile.done = true));
})();
`;

/** What a hostile page recorded of one attempt. */
interface Attempt {
  attempt: string;
  outcome: string;
  status?: number;
  closeCode?: number;
  answers?: string[];
  events?: number;
  detail?: string;
}

/** The attempts each cross-origin page makes that reach the server, by `METHOD path` (`UPGRADE` for WebSocket). */
const CROSS_SITE_REQUESTS: Readonly<Record<string, number>> = {
  'UPGRADE /lockstep': 1,
  'POST /api/sessions': 5,
  'POST /api/tasks': 3,
  'GET /api/streams/tasks/default': 1,
};

/** An HTTP server of the attacker's: the hostile page and its script. */
async function startHostileServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://x').pathname;
    if (path === '/') response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(HOSTILE_PAGE);
    else if (path === '/hostile.js') response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(HOSTILE_SCRIPT);
    else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// A tap on the reference server: every request and upgrade it got, and what it answered
// ---------------------------------------------------------------------------------------------

interface WireRecord {
  /** `METHOD path`, `UPGRADE path` for a WebSocket upgrade. */
  what: string;
  host: string;
  origin: string | null;
  /** The login cookie came with it. */
  cookie: boolean;
  status: number;
  frameOptions: string | null;
  csp: string | null;
}

/**
 * Records, while `recording`, what the server on `port` answered: requests through Node's
 * `http.server.request.start` diagnostics channel, upgrades through an 'upgrade' listener added to
 * that server (the status line its refusal or acceptance writes first).
 */
function tapServer(port: number) {
  const records: WireRecord[] = [];
  const tapped = new Set<HttpServer>();
  const tap = { records, recording: false, stop };
  const describeRequest = (request: IncomingMessage, what: string): WireRecord => ({
    what,
    host: request.headers.host ?? '',
    origin: request.headers.origin ?? null,
    cookie: /(^|;)\s*lockstep-token[-\d]*=/.test(request.headers.cookie ?? ''),
    status: 0,
    frameOptions: null,
    csp: null,
  });
  const onUpgrade = (request: IncomingMessage, socket: Socket) => {
    if (!tap.recording) return;
    const record = describeRequest(request, `UPGRADE ${new URL(request.url ?? '/', 'http://x').pathname}`);
    records.push(record);
    const look = (chunk: unknown) => {
      if (record.status !== 0 || chunk === undefined || typeof chunk === 'function') return;
      record.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('latin1'))?.[1] ?? -1);
    };
    const { write, end } = socket;
    socket.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      look(chunk);
      return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    };
    socket.end = function (this: Socket, chunk?: unknown, ...rest: unknown[]) {
      look(chunk);
      return (end as (...args: unknown[]) => Socket).call(this, chunk, ...rest);
    };
  };
  const onRequest = (message: unknown) => {
    const { request, response, server } = message as { request: IncomingMessage; response: ServerResponse; server: HttpServer };
    if ((server.address() as AddressInfo | null)?.port !== port) return;
    if (!tapped.has(server)) {
      tapped.add(server);
      server.prependListener('upgrade', onUpgrade);
    }
    if (!tap.recording) return;
    const record = describeRequest(request, `${request.method} ${new URL(request.url ?? '/', 'http://x').pathname}`);
    records.push(record);
    response.once('finish', () => {
      record.status = response.statusCode;
      record.frameOptions = String(response.getHeader('X-Frame-Options') ?? '') || null;
      record.csp = String(response.getHeader('Content-Security-Policy') ?? '') || null;
    });
  };
  subscribe('http.server.request.start', onRequest);
  function stop(): void {
    unsubscribe('http.server.request.start', onRequest);
    for (const server of tapped) server.off('upgrade', onUpgrade);
  }
  return tap;
}

// ---------------------------------------------------------------------------------------------
// The scenario, shared by the in-process case and the network-namespace child
// ---------------------------------------------------------------------------------------------

interface FrameView {
  url: string;
  /** Elements of the dashboard (anything with a data-testid) in the frame; -1 when the frame cannot be read. */
  dashboardNodes: number;
}

interface HostileRun {
  port: number;
  cookie: { httpOnly: boolean; sameSite: string } | null;
  sites: Array<{ origin: string; attempts: Attempt[]; frame: FrameView }>;
  rebinding: { directStatus: number | null; attempts: Attempt[] };
  wire: WireRecord[];
  before: { version: number; state: TasksState };
  after: { version: number; state: TasksState };
  spawned: number;
  terminals: number;
  control: { rendered: boolean; errors: string[]; status: unknown; spawned: number; sessions: number; typedTask: boolean; version: number };
}

/** The browser flags of the suite: `evil.example` resolves to loopback (where the test's servers are). */
const BROWSER_ARGS = [`--host-resolver-rules=MAP ${EVIL_NAME} 127.0.0.1`];

async function readTasks(server: ReferenceServer): Promise<{ version: number; state: TasksState }> {
  const { version, state } = await server.hub.read(STREAM);
  return { version, state: structuredClone(state) as TasksState };
}

/** Everything the scenario does against `server`, in `browser`; cleans up what it starts. */
async function runHostileSite(server: ReferenceServer, browser: Browser): Promise<HostileRun> {
  const port = Number(new URL(server.url).port);
  const cleanups: Array<() => unknown> = [];
  try {
    const tap = tapServer(port);
    cleanups.push(() => tap.stop());
    const evil = await startHostileServer();
    cleanups.push(() => evil.close());
    const context: BrowserContext = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    cleanups.push(() => context.close());

    // The victim signs in: the login page sets the cookie and goes on to the dashboard. The
    // dashboard's own requests (its connection, and what it fetches as it mounts: the route list,
    // the projects, the profiles) are answered before the attacks' window opens — a late one would be
    // taken for a request of a hostile page.
    const victim = await context.newPage();
    const startup = ['/api', '/api/projects', '/api/profiles'].map((path) =>
      victim.waitForResponse((response) => new URL(response.url()).pathname === path, { timeout: 15_000 }),
    );
    await victim.goto(server.loginUrl!);
    await victim.waitForURL((url) => url.pathname === '/');
    await victim.locator('[data-testid=connection][data-status=online]').waitFor({ timeout: 15_000 });
    await Promise.all(startup);
    await victim.close();
    const cookie = (await context.cookies(server.url)).find((candidate) => candidate.name.startsWith('lockstep-token'));

    let spawned = 0;
    cleanups.push(server.terminals.onSpawn(() => spawned++));
    const before = await readTasks(server);
    tap.recording = true;

    // Pages of other origins, in the signed-in browser.
    const sites: HostileRun['sites'] = [];
    for (const origin of [`http://127.0.0.1:${evil.port}`, `http://${EVIL_NAME}:${evil.port}`]) {
      const page = await context.newPage();
      await page.goto(`${origin}/?target=${encodeURIComponent(server.url)}`);
      await page.waitForFunction('window.hostile !== undefined && window.hostile.done === true', undefined, { timeout: 45_000 });
      const attempts: Attempt[] = await page.evaluate('window.hostile.results');
      // Clickjacking: click into the framed dashboard and type a task title and Enter.
      const element = page.locator('iframe#dashboard');
      await element.click();
      await page.keyboard.type('typed into the frame\n');
      const frame = await (await element.elementHandle())?.contentFrame();
      let dashboardNodes = -1;
      try {
        dashboardNodes = frame ? await frame.locator('[data-testid]').count() : -1;
      } catch {
        dashboardNodes = -1;
      }
      sites.push({ origin, attempts, frame: { url: frame?.url() ?? '', dashboardNodes } });
      await page.close();
    }

    // DNS rebinding: evil.example now resolves to the server, on its port. The browser's visit
    // gets the server's answer. The attacker's page would have been served before the name moved, so
    // it lives on that origin with none of the server's policies: here, the script runs in the
    // document the server answered, its CSP set aside (a context of its own, as the attacker's page
    // would not have it). The document came from loopback, so Chromium's own local-network checks
    // do not step in: what refuses is the server.
    const rebindBase = `http://${EVIL_NAME}:${port}`;
    const rebindContext = await browser.newContext({ bypassCSP: true });
    cleanups.push(() => rebindContext.close());
    const rebindPage = await rebindContext.newPage();
    const direct = await rebindPage.goto(`${rebindBase}/?target=${encodeURIComponent(rebindBase)}&rebound`);
    const directStatus = direct?.status() ?? null;
    await rebindPage.evaluate(HOSTILE_SCRIPT);
    await rebindPage.waitForFunction('window.hostile !== undefined && window.hostile.done === true', undefined, { timeout: 45_000 });
    const rebindAttempts: Attempt[] = await rebindPage.evaluate('window.hostile.results');
    await rebindPage.close();

    tap.recording = false;
    const after = await readTasks(server);
    const terminals = server.terminals.list().length + server.terminals.waiting().length;
    const attackSpawned = spawned;

    // The control: the dashboard itself (the server's own origin) creates a session, and a task by
    // typing — what the attacks above would have done had they worked.
    const dashboard = await context.newPage();
    const errors: string[] = [];
    dashboard.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    dashboard.on('pageerror', (error) => errors.push(error.message));
    await dashboard.goto(`${server.url}/`);
    const rendered = await dashboard
      .locator('[data-testid=task-board]')
      .waitFor({ timeout: 15_000 })
      .then(
        () => true,
        () => false,
      );
    const status: unknown = await dashboard
      .evaluate(
        "fetch('/api/sessions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'control' }) }).then((answer) => answer.status)",
      )
      .catch((error: unknown) => `failed: ${error instanceof Error ? error.message : String(error)}`);
    const typed = async () => Object.values((await readTasks(server)).state.tasks).some((task) => task.title === 'typed into the dashboard');
    if (rendered) {
      await dashboard.locator('[data-testid=task-create-title]').click();
      await dashboard.keyboard.type('typed into the dashboard\n');
      await until(typed, 'the typed task');
    }
    if (status === 201) await until(() => spawned > attackSpawned, 'the control session to spawn its terminal');
    const final = await readTasks(server);
    await dashboard.close();

    return {
      port,
      cookie: cookie ? { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite } : null,
      sites,
      rebinding: { directStatus, attempts: rebindAttempts },
      wire: tap.records,
      before,
      after,
      spawned: attackSpawned,
      terminals,
      control: {
        rendered,
        errors,
        status,
        spawned: spawned - attackSpawned,
        sessions: Object.keys(final.state.sessions).length - Object.keys(after.state.sessions).length,
        typedTask: await typed(),
        version: final.version,
      },
    };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
}

/** Counts records by `what`. */
function countBy(records: readonly WireRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const record of records) counts[record.what] = (counts[record.what] ?? 0) + 1;
  return counts;
}

/** The assertions on a run, the same for both cases. */
function expectEveryAttackFailed(run: HostileRun): void {
  // The victim was signed in: the cookie the attacks could ride on was there.
  expect(run.cookie).toEqual({ httpOnly: true, sameSite: 'Strict' });

  // What the pages saw: nothing opened, nothing readable, no event, no framed dashboard.
  for (const site of run.sites) {
    const outcomes = Object.fromEntries(site.attempts.map((attempt) => [attempt.attempt, attempt]));
    expect(Object.keys(outcomes), site.origin).toHaveLength(11);
    expect(outcomes['websocket'], site.origin).toMatchObject({ outcome: 'refused', answers: [] });
    expect(outcomes['websocket']!.closeCode, site.origin).not.toBe(1000);
    expect(outcomes['eventsource'], site.origin).toEqual({ attempt: 'eventsource', outcome: 'refused', events: 0 });
    // no-cors: an opaque answer at most (Cross-Origin-Resource-Policy turns it into a network error).
    for (const attempt of site.attempts.filter((a) => a.attempt.startsWith('fetch no-cors')))
      expect(['opaque', 'blocked'], `${site.origin} ${attempt.attempt}`).toContain(attempt.outcome);
    expect(outcomes['fetch cors POST /api/sessions credentials'], site.origin).toMatchObject({ outcome: 'blocked' });
    for (const attempt of site.attempts.filter((a) => a.attempt.startsWith('form')))
      expect(attempt, site.origin).toEqual({ attempt: attempt.attempt, outcome: 'answer unreadable' });
    expect(outcomes['iframe /'], site.origin).toEqual({ attempt: 'iframe /', outcome: 'frame loaded, unreadable' });
    expect(site.frame.dashboardNodes, `${site.origin}: dashboard elements in the frame at ${site.frame.url}`).toBeLessThanOrEqual(0);
    expect(site.frame.url, site.origin).not.toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${run.port}/`));

    // What the server saw: each attempt reached it and was refused there (403: the Origin).
    const fromSite = run.wire.filter((record) => record.origin === site.origin);
    expect(countBy(fromSite), site.origin).toEqual(CROSS_SITE_REQUESTS);
    expect(
      fromSite.filter((record) => record.status !== 403),
      site.origin,
    ).toEqual([]);
  }
  // From the other local port (same site), the browser sent the cookie: refused anyway.
  const localOrigin = run.sites[0]!.origin;
  expect(run.wire.some((record) => record.origin === localOrigin && record.cookie && record.what === 'POST /api/sessions')).toBe(true);

  // DNS rebinding: the server does not answer to that Host; the rebound page got nothing.
  expect(run.rebinding.directStatus).toBe(403);
  const rebound = Object.fromEntries(run.rebinding.attempts.map((attempt) => [attempt.attempt, attempt]));
  expect(Object.keys(rebound)).toHaveLength(14);
  expect(rebound['websocket']).toMatchObject({ outcome: 'refused', answers: [] });
  expect(rebound['eventsource']).toMatchObject({ outcome: 'refused', events: 0 });
  const reboundFetches = run.rebinding.attempts.filter((attempt) => attempt.attempt.startsWith('fetch'));
  expect(reboundFetches).toHaveLength(7);
  for (const attempt of reboundFetches) {
    // Same-origin now, so readable: the server's refusal, and nothing else.
    expect(attempt, attempt.attempt).toMatchObject({ outcome: 'read', status: 403 });
    expect(attempt.detail, attempt.attempt).toContain('does not answer to host');
  }
  const rebindHost = `${EVIL_NAME}:${run.port}`;
  const rebindRecords = run.wire.filter((record) => record.host === rebindHost);
  expect(countBy(rebindRecords.filter((record) => record.what !== 'GET /favicon.ico'))).toEqual({
    'GET /': 2, // the visit, and the frame
    'UPGRADE /lockstep': 1,
    'POST /api/sessions': 6,
    'POST /api/tasks': 4,
    'GET /api/tasks': 1,
    'GET /api/streams/tasks/default': 1,
  });
  expect(rebindRecords.filter((record) => record.status !== 403)).toEqual([]);

  // Every request the server got during the attacks: nothing outside these, so no script or
  // asset of the dashboard or the login page was ever loaded into a hostile frame; whatever it did
  // not refuse (the framed pages) forbids framing.
  expect(
    run.wire.filter(
      (record) =>
        ![
          'GET /',
          'GET /login',
          'GET /favicon.ico',
          'POST /api/sessions',
          'POST /api/tasks',
          'GET /api/tasks',
          'GET /api/streams/tasks/default',
          'UPGRADE /lockstep',
        ].includes(record.what),
    ),
  ).toEqual([]);
  const served = run.wire.filter((record) => record.status < 400);
  expect(served.length).toBeGreaterThan(0);
  for (const record of served) {
    expect(record.what, JSON.stringify(record)).toMatch(/^GET \/(login)?$/);
    expect(record.frameOptions, JSON.stringify(record)).toBe('DENY');
    expect(record.csp, JSON.stringify(record)).toContain("frame-ancestors 'none'");
  }
  expect(run.wire.filter((record) => record.status === 0 || record.status === -1)).toEqual([]);

  // Nothing changed, and no shell started.
  expect(run.after).toEqual(run.before);
  expect(run.spawned).toBe(0);
  expect(run.terminals).toBe(0);

  // The control: the same browser, on the server's own origin, can change things, and the checks see it.
  expect(run.control, `the dashboard's errors: ${JSON.stringify(run.control.errors)}`).toMatchObject({
    rendered: true,
    status: 201,
    spawned: 1,
    sessions: 1,
    typedTask: true,
  });
  expect(run.control.version).toBeGreaterThan(run.after.version);
}

// ---------------------------------------------------------------------------------------------
// The network-namespace case: this file as a child process, under `unshare -n`
// ---------------------------------------------------------------------------------------------

const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const THIS_FILE = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Inside the namespace: a server on 0.0.0.0, the scenario in Chromium, one result line on stdout. */
async function childMain(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lockstep-hostile-ns-'));
  let server: ReferenceServer | undefined;
  let browser: Browser | undefined;
  try {
    server = await startReferenceServer({
      port: 0,
      host: '0.0.0.0',
      shell: SHELL,
      terminalCwd: dataDir,
      dataDir,
      auth: { token: TEST_TOKEN },
      runtimeDir: false,
      log: () => {},
    });
    browser = await launchChromium(BROWSER_ARGS);
    const run = await runHostileSite(server, browser);
    // Bound to every interface: another loopback address reaches it too (and is not a name it answers to).
    const otherAddress = await new Promise<number | string>((resolve) => {
      const request = httpRequest(
        `http://127.0.0.2:${new URL(server!.url).port}/api/tasks`,
        { headers: { Authorization: `Bearer ${TEST_TOKEN}` } },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.on('error', (error) => resolve(String(error)));
      request.end();
    });
    const where = { interfaces: Object.keys(networkInterfaces()), otherAddress };
    process.stdout.write(`${RESULT_PREFIX}${JSON.stringify({ ...run, where })}\n`);
  } finally {
    await browser?.close();
    await server?.close();
    await rm(dataDir, { recursive: true, force: true });
  }
}

/** Whether this machine lets the test make a network namespace (root, or user namespaces allowed). */
function canUnshare(): boolean {
  return spawnSync('unshare', ['-n', '--', 'ip', 'link', 'set', 'lo', 'up'], { stdio: 'ignore' }).status === 0;
}

if (process.env[CHILD_ENV] === '1') {
  const timer = setTimeout(() => {
    console.error('the hostile-site child took more than 50 s');
    process.exit(1);
  }, 50_000);
  try {
    await childMain();
    clearTimeout(timer);
  } catch (error) {
    console.error(error);
    process.exit(1);
  }
} else {
  const skipBrowser = skipWithoutChromium('hostileSite.test');
  const namespaces = canUnshare();
  if (!namespaces && !inCi)
    console.warn('[hostileSite.test] the network-namespace case is skipped: `unshare -n` is not permitted here (run as root). In CI this is a failure.');

  describe('a hostile site in the signed-in browser', () => {
    it.skipIf(skipBrowser)('cannot drive the server: cross-site WebSocket, fetch, forms, EventSource, framing, DNS rebinding', async () => {
      requireChromium();
      const server = await startTestServer({ shell: SHELL });
      const browser = await launchChromium(BROWSER_ARGS);
      onTestFinished(() => browser.close());
      expectEveryAttackFailed(await runHostileSite(server, browser));
    });

    it.skipIf(skipBrowser || (!namespaces && !inCi))(
      'the same with the server bound to 0.0.0.0 inside a network namespace that has only loopback (unshare -n)',
      async () => {
        requireChromium();
        if (!namespaces) throw new Error('CI needs `unshare -n` (run the tests as root) for the network-namespace case');
        const child = spawn(
          'unshare',
          ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', process.execPath, '--conditions=lockstep-source', '--import', TSX, THIS_FILE],
          { cwd: ROOT, env: { ...process.env, [CHILD_ENV]: '1' }, stdio: ['ignore', 'pipe', 'pipe'] },
        );
        let stdout = '';
        let stderr = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        onTestFinished(() => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        });
        const code = await exited;
        const line = stdout.split('\n').find((candidate) => candidate.startsWith(RESULT_PREFIX));
        expect({ code, result: line !== undefined }, `${stdout}\n${stderr}`).toEqual({ code: 0, result: true });
        const run = JSON.parse(line!.slice(RESULT_PREFIX.length)) as HostileRun & { where: { interfaces: string[]; otherAddress: number | string } };
        // It ran where it should: a namespace with loopback only, the server on every interface.
        expect(run.where).toEqual({ interfaces: ['lo'], otherAddress: 403 });
        expectEveryAttackFailed(run);
      },
    );
  });
}

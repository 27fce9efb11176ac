import { Hub, MemoryEventStore } from '@lockstep/server';
import { createWebSocketServer, type LockstepWebSocketServer } from '@lockstep/ws/server';
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { bundlePage, servePage } from './browserBundle.js';
import { launchChromium, requireChromium, skipWithoutChromium } from './chromium.js';
import { taggedCounter } from './offline/counterDomain.js';
import type { OfflinePageApi, PageView } from './offline/offlinePage.js';

/**
 * Offline-first in a real browser (docs/offline.md): two tabs of one origin, each a persistent
 * client on IndexedDB. The hub goes away; one tab dispatches 100 commands, is reloaded while still
 * offline and shows them, restored and pending; the hub comes back: all 100 are applied exactly
 * once, and both tabs and the hub agree.
 */

const skipBrowser = skipWithoutChromium('offlineBrowser.test');

const api = (page: Page) => ({
  start: (url: string, database: string) =>
    page.evaluate(([u, d]) => (globalThis as unknown as { lockstepOffline: OfflinePageApi }).lockstepOffline.start(u, d), [url, database] as const),
  dispatch: (prefix: string, count: number) =>
    page.evaluate(([p, n]) => (globalThis as unknown as { lockstepOffline: OfflinePageApi }).lockstepOffline.dispatch(p, n), [prefix, count] as const),
  flush: () => page.evaluate(() => (globalThis as unknown as { lockstepOffline: OfflinePageApi }).lockstepOffline.flush()),
  view: (): Promise<PageView> => page.evaluate(() => (globalThis as unknown as { lockstepOffline: OfflinePageApi }).lockstepOffline.view()),
  whenIdle: () => page.evaluate(() => (globalThis as unknown as { lockstepOffline: OfflinePageApi }).lockstepOffline.whenIdle()),
});

async function until(what: string, condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('offline-first in Chromium (IndexedDB)', () => {
  it('bundles the IndexedDB adapter for browsers with no Node builtins', async () => {
    const { code, inputs } = await bundlePage(new URL('./offline/offlinePage.ts', import.meta.url));
    expect(inputs.filter((input) => input.startsWith('node:') || input.includes('persist-file') || input.includes('fileStorage'))).toEqual([]);
    expect(code).not.toMatch(/(?:from|import|require)\s*\(?\s*["']node:/);
  });

  it.skipIf(skipBrowser)('a tab offline dispatches 100 commands, is reloaded offline, comes back: all applied once, tabs and hub agree', async () => {
    requireChromium();
    const store = new MemoryEventStore();
    const hubOptions = { domains: [taggedCounter], store };
    let hub = new Hub(hubOptions);
    let wsServer: LockstepWebSocketServer = createWebSocketServer(hub, { port: 0 });
    await wsServer.ready;
    const port = wsServer.address().port;
    const url = `ws://127.0.0.1:${port}`;
    const { code } = await bundlePage(new URL('./offline/offlinePage.ts', import.meta.url));
    const pages = await servePage(code, 'lockstep offline');
    const browser = await launchChromium();
    onTestFinished(async () => {
      await browser.close();
      await new Promise<void>((resolve) => pages.server.close(() => resolve()));
      await hub.close();
      await wsServer.close();
    });
    const context = await browser.newContext();
    const pageErrors: string[] = [];
    const open = async () => {
      const page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(pages.url);
      await page.waitForFunction(() => 'lockstepOffline' in globalThis);
      return page;
    };
    const tabA = await open();
    const tabB = await open();
    const a = api(tabA);
    const b = api(tabB);
    expect(await a.start(url, 'tab-a')).toMatchObject({ restored: false, pending: 0 });
    await b.start(url, 'tab-b');
    await b.dispatch('b', 5);
    await Promise.all([a.whenIdle(), b.whenIdle()]);
    await until('tab A to have the 5 events', async () => (await a.view()).confirmed.version === 5);
    await a.flush();

    // The hub goes away; tab A goes on offline.
    await hub.close();
    await wsServer.close();
    await until('tab A offline', async () => (await a.view()).status === 'offline');
    await a.dispatch('a', 100);
    await a.flush();
    expect(await a.view()).toMatchObject({ pending: 100, view: { n: 105 } });

    // Reloaded while still offline: the stored state and the 100 commands show at once.
    await tabA.reload();
    await tabA.waitForFunction(() => 'lockstepOffline' in globalThis);
    const restored = await a.start(url, 'tab-a');
    expect(restored).toMatchObject({ storage: 'persistent', restored: true, pending: 100, confirmed: { version: 5 }, view: { n: 105 } });
    expect(restored.status).not.toBe('online');
    expect(restored.view.tags).toEqual([...['b0', 'b1', 'b2', 'b3', 'b4'], ...Array.from({ length: 100 }, (_, i) => `a${i}`)]);

    // Back online: the hub (same store, same log) takes them, each once.
    hub = new Hub(hubOptions);
    wsServer = createWebSocketServer(hub, { port });
    await wsServer.ready;
    await Promise.all([a.whenIdle(), b.whenIdle()]);
    const truth = JSON.parse(JSON.stringify(await hub.read('counter/board'))) as { state: { n: number; tags: string[] }; version: number };
    expect(truth.version).toBe(105);
    expect(new Set(truth.state.tags).size).toBe(105);
    await until('tab B to catch up', async () => (await b.view()).confirmed.version === 105);
    for (const [name, tab] of [['A', a] as const, ['B', b] as const]) {
      const seen = await tab.view();
      expect(seen.confirmed, `tab ${name}`).toEqual(truth);
      expect(seen.view, `tab ${name}`).toEqual(truth.state);
      expect(seen).toMatchObject({ status: 'online', restored: false, pending: 0, storage: 'persistent' });
    }
    // And a second reload starts from the stored, now confirmed, state with nothing pending.
    await a.flush();
    await tabA.reload();
    await tabA.waitForFunction(() => 'lockstepOffline' in globalThis);
    expect(await a.start(url, 'tab-a')).toMatchObject({ restored: true, pending: 0, confirmed: truth });
    // A third tab on tab A's database does not share it (pending commands would be overwritten): it
    // says so and works in memory.
    const c = api(await open());
    expect(await c.start(url, 'tab-a')).toMatchObject({ storage: 'failed', lastError: expect.stringContaining('in use by another tab'), restored: false });
    await c.whenIdle();
    expect((await c.view()).confirmed).toEqual(truth);
    expect(pageErrors).toEqual([]);
  });
});

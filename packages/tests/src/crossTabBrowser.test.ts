import { Hub, MemoryEventStore } from '@lockstep/server';
import { createWebSocketServer } from '@lockstep/ws/server';
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { bundlePage, servePage } from './browserBundle.js';
import { launchChromium, requireChromium, skipWithoutChromium } from './chromium.js';
import type { CrossTabPageApi } from './offline/crossTabPage.js';
import { taggedCounter } from './offline/counterDomain.js';

/**
 * One connection for all tabs (`@lockstep/client/cross-tab`) in Chromium: three tabs, the hub
 * counts one connection; the leader tab is killed while the others dispatch: another tab leads
 * within a second, and every command is applied exactly once.
 */

const skipBrowser = skipWithoutChromium('crossTabBrowser.test');

type Api = { [K in keyof CrossTabPageApi]: (...args: Parameters<CrossTabPageApi[K]>) => Promise<Awaited<ReturnType<CrossTabPageApi[K]>>> };

function api(page: Page): Api {
  const call =
    <K extends keyof CrossTabPageApi>(name: K) =>
    (...args: unknown[]) =>
      page.evaluate(([n, a]) => (globalThis as unknown as { lockstepTabs: Record<string, (...x: unknown[]) => unknown> }).lockstepTabs[n as string]!(...a), [
        name,
        args,
      ] as const);
  return {
    start: call('start'),
    isLeader: call('isLeader'),
    leaderSince: call('leaderSince'),
    dispatch: call('dispatch'),
    view: call('view'),
    whenIdle: call('whenIdle'),
  } as unknown as Api;
}

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('one connection for all tabs (Chromium)', () => {
  it.skipIf(skipBrowser)('three tabs share one connection; the leader is killed: another leads within 1 s, no command lost or doubled', async () => {
    requireChromium();
    const hub = new Hub({ domains: [taggedCounter], store: new MemoryEventStore() });
    const wsServer = createWebSocketServer(hub, { port: 0 });
    await wsServer.ready;
    const url = `ws://127.0.0.1:${wsServer.address().port}`;
    const pages = await servePage((await bundlePage(new URL('./offline/crossTabPage.ts', import.meta.url))).code, 'lockstep tabs');
    const browser = await launchChromium();
    onTestFinished(async () => {
      await browser.close();
      await new Promise<void>((resolve) => pages.server.close(() => resolve()));
      await hub.close();
      await wsServer.close();
    });
    const context = await browser.newContext();
    const pageErrors: string[] = [];
    const tabs: Array<{ page: Page; api: Api }> = [];
    for (let i = 0; i < 3; i++) {
      const page = await context.newPage();
      page.on('pageerror', (error) => pageErrors.push(error.message));
      if (process.env.LOCKSTEP_DEBUG_TABS) page.on('console', (message) => console.log(`tab ${i}: ${message.text()}`));
      await page.goto(pages.url);
      await page.waitForFunction(() => 'lockstepTabs' in globalThis);
      tabs.push({ page, api: api(page) });
      await tabs.at(-1)!.api.start(url);
    }
    const leaders = async () => (await Promise.all(tabs.map((tab) => tab.api.isLeader()))).filter(Boolean).length;
    expect(await leaders()).toBe(1);
    await until('one connection on the hub', () => hub.peers().length === 1);

    for (const [i, tab] of tabs.entries()) await tab.api.dispatch(`t${i}-`, 10);
    await Promise.all(tabs.map((tab) => tab.api.whenIdle()));
    await until('every tab to hold 30 events', async () =>
      (await Promise.all(tabs.map((tab) => tab.api.view()))).every((view) => view.confirmed.version === 30),
    );
    expect(hub.peers()).toHaveLength(1);

    // Kill the leader (its renderer crashes) while the others keep dispatching.
    const leaderIndex = (await Promise.all(tabs.map((tab) => tab.api.isLeader()))).indexOf(true);
    const leader = tabs[leaderIndex]!;
    const others = tabs.filter((_, i) => i !== leaderIndex);
    const killedAt = Date.now();
    const cdp = await context.newCDPSession(leader.page);
    // Not awaited: a crashed page never answers.
    void cdp.send('Page.crash').catch(() => {});
    for (const [i, tab] of others.entries()) await tab.api.dispatch(`handover${i}-`, 20);
    await until('another tab to lead', async () => (await Promise.all(others.map((tab) => tab.api.isLeader()))).some(Boolean), 5_000);
    const since = (await Promise.all(others.map((tab) => tab.api.leaderSince()))).find((value) => value !== undefined)!;
    expect(since - killedAt).toBeLessThan(1_000);
    await Promise.all(others.map((tab) => tab.api.whenIdle()));

    const truth = JSON.parse(JSON.stringify(await hub.read('counter/shared'))) as { state: { n: number; tags: string[] }; version: number };
    expect(truth.version).toBe(70);
    expect(new Set(truth.state.tags).size).toBe(70);
    await until('the tabs to hold the head', async () =>
      (await Promise.all(others.map((tab) => tab.api.view()))).every((view) => view.confirmed.version === 70),
    );
    for (const tab of others) expect((await tab.api.view()).confirmed).toEqual(truth);
    await until('one connection on the hub again', () => hub.peers().length === 1);
    expect(pageErrors).toEqual([]);
    console.log(`hand-over: a new leader ${since - killedAt} ms after the kill`);
  });
});

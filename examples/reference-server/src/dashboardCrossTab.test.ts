import { launchChromium, requireChromium, skipWithoutChromium } from '@lockstep/tests/chromium';
import type { Page } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DASHBOARD_ROOT_ID } from './contract.js';
import { DASHBOARD_VIEWPORT, byName, until, type Tab } from './dashboardPage.js';
import { scratchServerProcess } from './testing.js';

/**
 * The dashboard's tabs share one WebSocket (`@lockstep/client/cross-tab`, docs/offline.md): three
 * tabs of one browser profile hold one socket to the server; a terminal opened in a follower tab
 * runs over the leader's socket and shows its output; the leader's renderer crashes while the other
 * tabs create tasks: another tab leads within a second, every task is created exactly once, and the
 * terminal goes on in the surviving tabs.
 */

const skipBrowser = skipWithoutChromium('dashboardCrossTab.test');

const isLeader = (page: Page) => page.evaluate((id) => document.getElementById(id)?.getAttribute('data-tab-leader') === 'true', DASHBOARD_ROOT_ID);

describe('the reference dashboard shares one connection between its tabs', () => {
  it.skipIf(skipBrowser)(
    'three tabs, one WebSocket; a terminal in a follower tab; the leader crashes: another leads within 1 s, tasks created once',
    async () => {
      requireChromium();
      const server = await scratchServerProcess('lockstep-dashboard-tabs-');
      const browser = await launchChromium();
      onTestFinished(() => browser.close());
      // One browser profile: the tabs share an origin's BroadcastChannel, Web Locks and IndexedDB.
      const context = await browser.newContext({ viewport: DASHBOARD_VIEWPORT });
      const sockets = { opened: 0, open: 0 };
      /** Open sockets by page: a crashed page's socket never reports its close. */
      const openIn = new Map<Page, number>();
      const tabs: Tab[] = [];
      const leaderSince = new Map<Page, number>();
      for (let i = 0; i < 3; i++) {
        const page = await context.newPage();
        const tab: Tab = { name: `tab ${i}`, page, errors: [] };
        page.on('pageerror', (error) => tab.errors.push(error.message));
        page.on('websocket', (socket) => {
          sockets.opened++;
          sockets.open++;
          openIn.set(page, (openIn.get(page) ?? 0) + 1);
          socket.on('close', () => {
            sockets.open--;
            openIn.set(page, openIn.get(page)! - 1);
          });
        });
        await page.exposeFunction('lockstepTookLead', () => leaderSince.set(page, Date.now()));
        await page.addInitScript((id) => {
          new MutationObserver(() => {
            if (document.getElementById(id)?.getAttribute('data-tab-leader') === 'true')
              void (globalThis as unknown as { lockstepTookLead(): void }).lockstepTookLead();
          }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-tab-leader'] });
        }, DASHBOARD_ROOT_ID);
        // The first tab signs in with the login URL; the others find the cookie.
        await page.goto(i === 0 ? server.loginUrl : `${server.url}/`);
        await page.waitForURL((address) => address.pathname === '/');
        await until(tab, 'the connection online', (view) => view.connection === 'online' && view.boardLoaded);
        tabs.push(tab);
      }
      const roles = await Promise.all(tabs.map((tab) => isLeader(tab.page)));
      expect(roles.filter(Boolean)).toHaveLength(1);
      expect(sockets).toEqual({ opened: 1, open: 1 });

      // A session (with a shell on the server), created and focused in a follower tab; its terminal
      // runs over the leader's socket.
      const follower = tabs[roles.indexOf(false)]!;
      await follower.page.fill('[data-testid=session-create-name]', 'shared');
      await follower.page.click('[data-testid=session-create-submit]');
      const withSession = await until(follower, 'the session', (view) => byName(view, 'shared') !== undefined);
      const [sessionId] = byName(withSession, 'shared')!;
      await follower.page.locator(`[data-testid=session-row][data-session-id="${sessionId}"] [data-testid=session-focus]`).click();
      await until(follower, 'the terminal live', (view) => /[$#]/.test(view.terminals[sessionId] ?? ''));
      await follower.page.locator(`[data-testid=focus-tile][data-session-id="${sessionId}"] .xterm`).click();
      await follower.page.keyboard.type('echo lockstep-$((6 * 7))\n');
      await until(follower, "the command's output in the follower tab", (view) => (view.terminals[sessionId] ?? '').includes('lockstep-42'));
      expect(sockets).toEqual({ opened: 1, open: 1 });

      // The leader's renderer crashes while the two other tabs create tasks.
      const leader = tabs[roles.indexOf(true)]!;
      const others = tabs.filter((tab) => tab !== leader);
      const killedAt = Date.now();
      const cdp = await context.newCDPSession(leader.page);
      void cdp.send('Page.crash').catch(() => {}); // a crashed page never answers
      const titles: string[] = [];
      for (let round = 0; round < 3; round++) {
        for (const [i, tab] of others.entries()) {
          const title = `hand-over ${i}-${round}`;
          titles.push(title);
          await tab.page.fill('[data-testid=task-create-title]', title);
          await tab.page.click('[data-testid=task-create-submit]');
        }
      }
      const deadline = Date.now() + 5_000;
      while (![...leaderSince.keys()].some((page) => page !== leader.page)) {
        if (Date.now() > deadline) throw new Error('no other tab took the lead');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const since = [...leaderSince].find(([page]) => page !== leader.page)![1];
      expect(since - killedAt).toBeLessThan(1_000);
      const newRoles = await Promise.all(others.map((tab) => isLeader(tab.page)));
      expect(newRoles.filter(Boolean)).toHaveLength(1);

      // Every task once, in both tabs and on the server.
      for (const tab of others) {
        await until(
          tab,
          'every task, online, nothing pending',
          (view) =>
            view.connection === 'online' && view.pending === 0 && titles.every((title) => Object.values(view.tasks).some((task) => task.title === title)),
        );
      }
      const response = await fetch(`${server.url}/api/tasks`, { headers: { Authorization: `Bearer ${server.token}` } });
      const listed = ((await response.json()) as { tasks: Array<{ title: string }> }).tasks
        .map((task) => task.title)
        .filter((title) => title.startsWith('hand-over'));
      expect(listed.sort()).toEqual([...titles].sort());
      for (const tab of others) {
        const shown = Object.values((await until(tab, 'the tasks', () => true)).tasks).filter((task) => task.title.startsWith('hand-over'));
        expect(shown).toHaveLength(titles.length);
      }

      // The terminal goes on over the new leader's socket, in a tab that did not lead before.
      const typist = others.find((tab) => tab === follower) ?? others[0]!;
      await until(typist, 'the terminal live again', (view) => (view.terminals[sessionId] ?? '').includes('lockstep-42'));
      await typist.page.locator(`[data-testid=focus-tile][data-session-id="${sessionId}"] .xterm`).click();
      await typist.page.keyboard.type('echo after-$((2 * 3))\n');
      for (const tab of others) await until(tab, 'the output after the hand-over', (view) => (view.terminals[sessionId] ?? '').includes('after-6'));
      // One more socket in all: the new leader's; the surviving tabs hold one between them.
      expect(sockets.opened).toBe(2);
      expect(others.map((tab) => openIn.get(tab.page) ?? 0).sort()).toEqual([0, 1]);
      for (const tab of others) expect(tab.errors).toEqual([]);
      console.log(`dashboard hand-over: a new leader ${since - killedAt} ms after the crash`);
    },
  );
});

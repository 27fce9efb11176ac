import { launchChromium, requireChromium, skipWithoutChromium } from '@lockstep/tests/chromium';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PROJECT_ID } from './contract.js';
import { byTitle, openTab, until } from './dashboardPage.js';
import { scratchServerProcess } from './testing.js';

/**
 * The dashboard keeps its streams in IndexedDB (docs/offline.md): reloaded while its WebSocket
 * cannot reach the server, a tab shows the board it had at once — from the browser, not the hub —
 * and says it is not live; reloaded again with the server reachable, it catches up.
 */

const skipBrowser = skipWithoutChromium('dashboardOffline.test');

describe('the reference dashboard offline', () => {
  it.skipIf(skipBrowser)('shows the stored board after a reload without a connection, then catches up', async () => {
    requireChromium();
    const server = await scratchServerProcess('lockstep-dashboard-offline-');
    const rest = async (method: string, path: string, body: unknown) => {
      const response = await fetch(`${server.url}${path}`, {
        method,
        headers: { Authorization: `Bearer ${server.token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(response.ok).toBe(true);
    };
    const browser = await launchChromium();
    onTestFinished(() => browser.close());

    const tab = await openTab(browser, server.loginUrl, 'tab', server.token);
    await rest('POST', '/api/tasks', { projectId: PROJECT_ID, title: 'Kept in this browser', priority: 'high' });
    await until(tab, 'the new task', (view) => byTitle(view, 'Kept in this browser') !== undefined);
    await tab.page.waitForTimeout(300); // the client writes 50 ms after a change

    // No WebSocket reaches the server any more (the socket is mocked and never answered)…
    let offline = true;
    await tab.page.routeWebSocket(/./, (socket) => {
      // …until the network is back: then it goes through to the server.
      if (!offline) socket.connectToServer();
    });
    await tab.page.reload();
    const restored = await until(tab, 'the stored board', (view) => view.boardLoaded && byTitle(view, 'Kept in this browser') !== undefined);
    expect(restored.connection).not.toBe('online');
    expect(await tab.page.locator('[data-testid=connection]').getAttribute('data-storage')).toBe('persistent');

    // Meanwhile another task is added; with the connection back, the tab catches up.
    await rest('POST', '/api/tasks', { projectId: PROJECT_ID, title: 'Added while the tab was away', priority: 'low' });
    offline = false;
    await tab.page.reload();
    await until(
      tab,
      'both tasks, live',
      (view) =>
        view.connection === 'online' && byTitle(view, 'Added while the tab was away') !== undefined && byTitle(view, 'Kept in this browser') !== undefined,
    );
    expect(tab.errors).toEqual([]);
  });
});

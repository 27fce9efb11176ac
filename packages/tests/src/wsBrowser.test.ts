import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { builtInDomains, createRandom, jsonCodec, type AnyDomain, type Codec } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { Hub, MemoryEventStore } from '@lockstep/server';
import { webSocketConnector } from '@lockstep/ws';
import { createWebSocketServer, type LockstepWebSocketServer } from '@lockstep/ws/server';
import type { Browser } from 'playwright-core';
import { describe, expect, it, onTestFinished } from 'vitest';
import { builtInScenario } from './builtInScenario.js';
import { bundlePage, servePage } from './browserBundle.js';
import { launchChromium, requireChromium, skipWithoutChromium } from './chromium.js';
import type { PageApi } from './wsBrowserPage.js';

/**
 * Three Node clients and one page in headless Chromium, all over WebSocket, send random commands;
 * the server is stopped and restarted from its store mid-run (a new Hub and WebSocket server on the
 * same port, over the same MemoryEventStore); every client resyncs and converges to the hub.
 */

const skipBrowser = skipWithoutChromium('wsBrowser.test');

const SEED = 0x5eed;
const COMMANDS_PER_PHASE = 40;

interface NodeClient {
  client: LockstepClient;
  statuses: string[];
  streams: Array<SyncedStream<AnyDomain>>;
  random: ReturnType<typeof createRandom>;
  settled: Array<Promise<unknown>>;
}

function nodeClient(url: string, index: number, codec: Codec): NodeClient {
  const client = createClient({
    connect: webSocketConnector(url, { codec }),
    codec,
    clientId: `node-${index}`,
    random: createRandom(SEED + 100 + index),
    backoff: { initialMs: 20, maxMs: 200 },
  });
  const streams = builtInScenario.streams.map(({ domain, key }) => client.stream(domain, key));
  const statuses: string[] = [];
  client.status$.subscribe(({ status }) => {
    if (statuses.at(-1) !== status) statuses.push(status);
  });
  return { client, statuses, streams, random: createRandom(SEED + index), settled: [] };
}

/** `count` random commands from one Node client, each after the previous one's optimistic update. */
async function runNode({ streams, random, settled }: NodeClient, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const stream = random.pick(streams);
    const spec = builtInScenario.streams.find(({ domain, key }) => `${domain.name}/${key}` === stream.name)!;
    settled.push(stream.dispatch(builtInScenario.nextCommand(random, spec, stream.getSnapshot()) as never).catch(() => {}));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

describe('browser and Node clients over WebSocket', () => {
  it('builds a browser bundle of client + ws + core with no Node builtins', async () => {
    const { code, inputs } = await bundlePage(new URL('./wsBrowserPage.ts', import.meta.url));
    expect(inputs.filter((input) => input.startsWith('node:') || /(^|\/)node_modules\/ws\//.test(input))).toEqual([]);
    expect(inputs.some((input) => input.includes('isomorphic-ws/browser.js'))).toBe(true);
    expect(code).not.toMatch(/(?:from|import|require)\s*\(?\s*["']node:/);
    expect(code).not.toMatch(/(?:from|import|require)\s*\(?\s*["'](?:crypto|http|https|net|tls|stream|events|zlib|buffer|url|fs)["']/);
  });

  it.skipIf(skipBrowser)('three Node clients and a Chromium page send random commands through a server restart and converge', async () => {
    requireChromium();
    const store = new MemoryEventStore();
    const hubOptions = { domains: builtInDomains, store, leaseGraceMs: 60_000 };
    let hub = new Hub(hubOptions);
    let wsServer: LockstepWebSocketServer = createWebSocketServer(hub, { port: 0 });
    await wsServer.ready;
    const port = wsServer.address().port;
    const url = `ws://127.0.0.1:${port}`;

    const { code } = await bundlePage(new URL('./wsBrowserPage.ts', import.meta.url));
    const pages = await servePage(code, 'lockstep');
    const browser: Browser = await launchChromium();
    const nodes = [nodeClient(url, 1, jsonCodec), nodeClient(url, 2, msgpackCodec), nodeClient(url, 3, jsonCodec)];
    onTestFinished(async () => {
      for (const node of nodes) node.client.close();
      await browser.close();
      await new Promise<void>((resolve) => pages.server.close(() => resolve()));
      await hub.close();
      await wsServer.close();
    });

    const page = await browser.newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(pages.url);
    await page.waitForFunction(() => 'lockstepPage' in globalThis);
    await page.evaluate(([wsUrl, seed]) => (globalThis as unknown as { lockstepPage: PageApi }).lockstepPage.start(wsUrl, seed), [url, SEED] as const);
    const pageRun = (count: number) => page.evaluate((n) => (globalThis as unknown as { lockstepPage: PageApi }).lockstepPage.run(n), count);

    // Phase 1: everyone writes.
    await Promise.all([...nodes.map((node) => runNode(node, COMMANDS_PER_PHASE)), pageRun(COMMANDS_PER_PHASE)]);

    // Phase 2: everyone keeps writing while the server is stopped and restarted from its store.
    const nodesWriting = Promise.all(nodes.map((node) => runNode(node, COMMANDS_PER_PHASE)));
    const pageWriting = pageRun(COMMANDS_PER_PHASE);
    await new Promise((resolve) => setTimeout(resolve, 10)); // let some of them reach the old hub
    await hub.close();
    await wsServer.close();
    hub = new Hub(hubOptions);
    wsServer = createWebSocketServer(hub, { port });
    await wsServer.ready;
    await nodesWriting;
    // The page's run resolves once each of its commands is acknowledged or rejected.
    const pageReport = await pageWriting;
    expect(pageReport.acknowledged + pageReport.rejected).toBe(COMMANDS_PER_PHASE);

    // Every command is settled (acknowledged or rejected) and every client idle and in sync.
    for (const node of nodes) await Promise.all(node.settled);
    await Promise.all(nodes.map((node) => node.client.whenIdle()));
    await page.evaluate(() => (globalThis as unknown as { lockstepPage: PageApi }).lockstepPage.whenIdle());

    const pageStreams = await page.evaluate(() => (globalThis as unknown as { lockstepPage: PageApi }).lockstepPage.streams());
    let total = 0;
    for (const { domain, key } of builtInScenario.streams) {
      const name = `${domain.name}/${key}`;
      const truth = JSON.parse(JSON.stringify(await hub.read(name))) as { state: unknown; version: number };
      total += truth.version;
      for (const [index, node] of nodes.entries()) {
        const stream = node.streams.find((candidate) => candidate.name === name)!;
        expect(JSON.parse(JSON.stringify(stream.confirmed)), `node client ${index + 1}, ${name}`).toEqual(truth);
        expect(JSON.parse(JSON.stringify(stream.getSnapshot())), `node client ${index + 1} view, ${name}`).toEqual(truth.state);
      }
      expect(pageStreams[name], `the page, ${name}`).toEqual({ ...truth, view: truth.state });
    }
    // The run really wrote, and every client went through the restart.
    expect(total).toBeGreaterThan(50);
    expect(await page.evaluate(() => (globalThis as unknown as { lockstepPage: PageApi }).lockstepPage.status())).toBe('online');
    for (const node of nodes) {
      expect(node.client.status.serverId).toBe(hub.serverId);
      // online, then the restart: offline (and connecting) until online again.
      expect(node.statuses.slice(node.statuses.indexOf('online'))).toContain('offline');
    }
    expect(await page.evaluate(() => (globalThis as unknown as { lockstepPage: PageApi }).lockstepPage.statuses())).toContain('offline');
    expect(pageErrors).toEqual([]);
  });
});

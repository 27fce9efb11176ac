import { builtInDomains } from '@lockstep/core';
import { Hub, MemoryEventStore, type HubOptions } from '@lockstep/server';
import { createWebSocketServer } from '@lockstep/ws/server';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RawPeer } from './wsPeer.js';

/**
 * Many streams over a real WebSocket (issue 18): a client that subscribes to hundreds of distinct
 * streams and leaves each leaves the hub with at most `maxLoadedStreams` loaded, and the idle timeout
 * unloads the rest once it is gone — but never a stream another client is subscribed to.
 */

async function startHub(options: Partial<HubOptions>): Promise<{ hub: Hub; url: string }> {
  const hub = new Hub({ domains: builtInDomains, store: new MemoryEventStore(), newStreamsPerMinute: false, rateLimit: false, ...options });
  const server = createWebSocketServer(hub, { port: 0 });
  onTestFinished(async () => {
    await hub.close();
    await server.close();
  });
  await server.ready;
  return { hub, url: `ws://127.0.0.1:${server.address().port}` };
}

async function peer(url: string): Promise<RawPeer> {
  const connected = await RawPeer.connect(url);
  onTestFinished(() => void connected.socket.terminate());
  expect((await connected.call('hello', { protocol: 1 })).error).toBeUndefined();
  return connected;
}

describe('many streams over WebSocket', () => {
  it('keeps at most maxLoadedStreams loaded while a client touches 300 streams, and never the one another client watches', async () => {
    const { hub, url } = await startHub({ maxLoadedStreams: 25 });
    const watcher = await peer(url);
    expect((await watcher.call('subscribe', { stream: 'tasks/watched' })).error).toBeUndefined();
    const visitor = await peer(url);
    let most = 0;
    for (let i = 0; i < 300; i++) {
      const stream = `tasks/visited-${i}`;
      expect((await visitor.call('subscribe', { stream })).result).toMatchObject({ stream, version: 0 });
      expect((await visitor.call('unsubscribe', { stream })).error).toBeUndefined();
      most = Math.max(most, hub.loadedStreamCount);
    }
    expect(most).toBe(25);
    expect(hub.wouldLoad('tasks/watched')).toBe(false);
    // The watcher still gets its stream's events.
    await hub.execute({ id: 'w1', stream: 'tasks/watched', type: 'task.create', payload: { id: 't1', title: 'still here' } });
    const events = await watcher.next();
    expect(events).toMatchObject({ method: 'events', params: { stream: 'tasks/watched', events: [{ version: 1 }] } });
  });

  it('unloads every stream idle for unloadIdleStreamsMs once the client left, except a watched one', async () => {
    const { hub, url } = await startHub({ unloadIdleStreamsMs: 200 });
    const watcher = await peer(url);
    await watcher.call('subscribe', { stream: 'tasks/watched' });
    const visitor = await peer(url);
    for (let i = 0; i < 100; i++) {
      await visitor.call('subscribe', { stream: `tasks/visited-${i}` });
      await visitor.call('unsubscribe', { stream: `tasks/visited-${i}` });
    }
    visitor.socket.close();
    await visitor.closed;
    for (let waited = 0; hub.loadedStreamCount > 1 && waited < 2_000; waited += 50) await sleep(50);
    expect(hub.loadedStreamCount).toBe(1);
    expect(hub.wouldLoad('tasks/watched')).toBe(false);
  });
});

/**
 * How many streams a hub keeps loaded (issue 18): the `maxLoadedStreams` cap unloads the least
 * recently used idle stream when one more is loaded, never one in use; `unloadIdleStreamsMs` unloads
 * on a timer. Driven through a memory transport with raw lockstep/1 frames, as a client would.
 */
import { builtInDomains, createMemoryLink, type MemoryLink } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { FakeClock, TestPeer } from '@lockstep/core/testing';
import type { Commit, EventStore } from './eventStore.js';
import { HUB_DEFAULTS, Hub, type HubOptions } from './hub.js';
import { MemoryEventStore } from './memoryEventStore.js';

/** One connection speaking raw frames over a memory link: a TestPeer, with this file's `ok`. */
class Wire extends TestPeer {
  constructor(readonly link: MemoryLink) {
    super(link.client);
  }

  async ok(method: string, params?: unknown): Promise<any> {
    const answer = await this.call(method, params);
    expect(answer.error, `${method} ${JSON.stringify(params)}`).toBeUndefined();
    return answer.result;
  }
}

function setup(options: Partial<HubOptions> = {}, store: EventStore = new MemoryEventStore()) {
  const clock = new FakeClock();
  const errors: unknown[] = [];
  const hub = new Hub({ domains: builtInDomains, store, clock, onError: (error) => errors.push(error), newStreamsPerMinute: false, ...options });
  return {
    hub,
    clock,
    errors,
    async connect(hello: Record<string, unknown> = {}): Promise<Wire> {
      const link = createMemoryLink({ clock });
      hub.accept(link.server);
      const wire = new Wire(link);
      await wire.ok('hello', { protocol: 1, ...hello });
      return wire;
    },
  };
}

const names = (count: number, prefix = 'p') => Array.from({ length: count }, (_, i) => `tasks/${prefix}${i}`);
let commands = 0;
const create = (stream: string, title = 'a task') => ({ id: `cmd-${++commands}`, stream, type: 'task.create', payload: { id: `t${commands}`, title } });

describe('hub: maxLoadedStreams', () => {
  it('has a default of 10,000, and refuses a cap that is not a whole number of at least 1', () => {
    expect(HUB_DEFAULTS.maxLoadedStreams).toBe(10_000);
    expect(setup().hub.settings.maxLoadedStreams).toBe(10_000);
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => setup({ maxLoadedStreams: bad })).toThrow(RangeError);
    expect(setup({ maxLoadedStreams: false }).hub.settings.maxLoadedStreams).toBe(false);
  });

  it('keeps at most the cap loaded while a client subscribes to and leaves many streams, the most recent ones', async () => {
    const s = setup({ maxLoadedStreams: 5 });
    const wire = await s.connect();
    for (const stream of names(40)) {
      await wire.ok('subscribe', { stream });
      await wire.ok('unsubscribe', { stream });
      expect(s.hub.loadedStreamCount).toBeLessThanOrEqual(5);
    }
    expect(s.hub.loadedStreamCount).toBe(5);
    // The five used last are the ones still loaded: using them loads nothing.
    const loaded = names(40).slice(35);
    for (const stream of loaded) expect(s.hub.wouldLoad(stream)).toBe(false);
    expect(s.hub.wouldLoad('tasks/p34')).toBe(true);
    expect(s.errors).toEqual([]);
  });

  it('unloads the least recently used: a stream used again moves to the back of the line', async () => {
    const s = setup({ maxLoadedStreams: 3 });
    const wire = await s.connect();
    for (const stream of ['tasks/a', 'tasks/b', 'tasks/c']) await wire.ok('command', create(stream));
    // a is used again (a read through the hub): b is now the least recently used.
    await s.hub.read('tasks/a');
    await wire.ok('command', create('tasks/d'));
    expect(['tasks/a', 'tasks/b', 'tasks/c', 'tasks/d'].map((stream) => s.hub.wouldLoad(stream))).toEqual([false, true, false, false]);
  });

  it('loads an unloaded stream again with its state and version, and its subscribers follow it', async () => {
    const s = setup({ maxLoadedStreams: 2 });
    const writer = await s.connect();
    await writer.ok('command', create('tasks/kept', 'first'));
    await writer.ok('command', create('tasks/kept', 'second'));
    const before = await s.hub.read('tasks/kept');
    // Two other streams push it out.
    await writer.ok('command', create('tasks/x'));
    await writer.ok('command', create('tasks/y'));
    expect(s.hub.wouldLoad('tasks/kept')).toBe(true);

    const reader = await s.connect();
    const answer = await reader.ok('subscribe', { stream: 'tasks/kept' });
    expect(answer).toMatchObject({ version: 2, snapshot: before.state });
    await writer.ok('command', create('tasks/kept', 'third'));
    await s.clock.flush();
    expect(reader.notifications('events').flatMap((message) => message.params.events.map((event: { version: number }) => event.version))).toEqual([3]);
  });

  it('never unloads a stream with a subscriber: the cap is soft, and later loads bring the count back down', async () => {
    const s = setup({ maxLoadedStreams: 3 });
    const wire = await s.connect();
    const held = names(6, 'held');
    for (const stream of held) await wire.ok('subscribe', { stream });
    expect(s.hub.loadedStreamCount).toBe(6);
    // Every loaded stream is in use: one more loads all the same.
    await wire.ok('command', create('tasks/other'));
    expect(s.hub.loadedStreamCount).toBe(7);
    // Still subscribed, still served.
    const watcher = await s.connect();
    await watcher.ok('command', create(held[0]!, 'after the cap'));
    await s.clock.flush();
    expect(wire.notifications('events').map((message) => message.params.stream)).toEqual([held[0]]);
    expect(wire.notifications('resync')).toEqual([]);

    // Left idle, they go down to the cap a second later, with no load to trigger it.
    for (const stream of held) await wire.ok('unsubscribe', { stream });
    expect(s.hub.loadedStreamCount).toBe(7);
    await s.clock.advance(1_000);
    expect(s.hub.loadedStreamCount).toBe(3);
    await wire.ok('command', create('tasks/next'));
    expect(s.hub.loadedStreamCount).toBe(3);
  });

  it('brings a burst of concurrent subscribes above the cap back down once they are answered and left', async () => {
    const s = setup({ maxLoadedStreams: 10 });
    const wire = await s.connect();
    const burst = names(60, 'burst');
    const answers = await Promise.all(burst.map((stream) => wire.call('subscribe', { stream })));
    expect(answers.filter((answer) => answer.error !== undefined)).toEqual([]);
    expect(wire.notifications('resync')).toEqual([]);
    await Promise.all(burst.map((stream) => wire.ok('unsubscribe', { stream })));
    await s.clock.advance(1_000);
    expect(s.hub.loadedStreamCount).toBe(10);
    expect(s.errors).toEqual([]);
  });

  it('never unloads a stream with commands queued or being appended', async () => {
    const gate = new GatedStore();
    const s = setup({ maxLoadedStreams: 2 }, gate);
    const wire = await s.connect();
    gate.hold = true;
    const pending = s.hub.execute(create('tasks/busy'));
    await s.clock.flush();
    expect(gate.held).toBe(1);
    gate.hold = false;
    for (const stream of names(5, 'q')) await wire.ok('command', create(stream));
    expect(s.hub.wouldLoad('tasks/busy')).toBe(false);
    gate.release();
    await expect(pending).resolves.toMatchObject({ version: 1 });
    // Idle now: the next load may take its place.
    for (const stream of names(3, 'r')) await wire.ok('command', create(stream));
    expect(s.hub.wouldLoad('tasks/busy')).toBe(true);
    expect(s.hub.loadedStreamCount).toBe(2);
  });

  it('never unloads a stream whose state holds leases', async () => {
    const s = setup({ maxLoadedStreams: 2, leaseGraceMs: 3_600_000 });
    const ide = await s.connect({ clientId: 'ide-1' });
    await ide.ok('command', {
      id: 'lease-1',
      stream: 'orchestration/default',
      type: 'workspace.setDesired',
      payload: { workspaceId: 'w', desired: 1, lease: true },
    });
    for (const stream of names(6)) await ide.ok('command', create(stream));
    expect(s.hub.wouldLoad('orchestration/default')).toBe(false);
    expect(s.hub.loadedStreamCount).toBe(2);
  });

  it('with maxLoadedStreams: false, only the idle timeout unloads', async () => {
    const s = setup({ maxLoadedStreams: false, unloadIdleStreamsMs: 60_000 });
    const wire = await s.connect();
    for (const stream of names(30)) {
      await wire.ok('subscribe', { stream });
      await wire.ok('unsubscribe', { stream });
    }
    expect(s.hub.loadedStreamCount).toBe(30);
    await s.clock.advance(120_000);
    expect(s.hub.loadedStreamCount).toBe(0);
  });

  it('works with the idle timeout: the timer empties what the cap left', async () => {
    const s = setup({ maxLoadedStreams: 4, unloadIdleStreamsMs: 60_000 });
    const wire = await s.connect();
    await wire.ok('subscribe', { stream: 'tasks/watched' });
    for (const stream of names(10)) await wire.ok('command', create(stream));
    expect(s.hub.loadedStreamCount).toBe(4);
    await s.clock.advance(120_000);
    // Only the subscribed stream stays.
    expect(s.hub.loadedStreamCount).toBe(1);
    expect(s.hub.wouldLoad('tasks/watched')).toBe(false);
  });
});

/** A memory store whose appends can be held until released. */
class GatedStore extends MemoryEventStore {
  hold = false;
  held = 0;
  #waiting: Array<() => void> = [];

  override async append(stream: string, expectedHead: number, commits: readonly Commit[]): Promise<void> {
    if (this.hold) {
      this.held++;
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    return super.append(stream, expectedHead, commits);
  }

  release(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }
}

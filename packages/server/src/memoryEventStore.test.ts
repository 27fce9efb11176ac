/**
 * The memory store's bound (issue 18): at most `maxStreams` streams and `maxEvents` retained events;
 * past them an append is refused with LIMIT_EXCEEDED and writes nothing. (Its conformance suite runs
 * in packages/tests.)
 */
import { ErrorCodes, LockstepError, builtInDomains, createMemoryLink } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../testkit/src/fakeClock.js';
import type { Commit, StoredEvent } from './eventStore.js';
import { Hub } from './hub.js';
import { DEFAULT_MAX_EVENTS, DEFAULT_MAX_STREAMS, MemoryEventStore } from './memoryEventStore.js';

function commit(commandId: string, from: number, count = 1): Commit {
  const events: StoredEvent[] = Array.from({ length: count }, (_, i) => ({ version: from + i, type: 'noted', data: { i }, time: 0, commandId }));
  return { commandId, fingerprint: `fp:${commandId}`, events };
}

async function refusal(promise: Promise<unknown>): Promise<LockstepError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(LockstepError);
  return error as LockstepError;
}

describe('memory event store: bounds', () => {
  it('has documented defaults and refuses bounds that are not whole numbers of at least 1 (or Infinity)', () => {
    expect([DEFAULT_MAX_STREAMS, DEFAULT_MAX_EVENTS]).toEqual([100_000, 1_000_000]);
    expect(() => new MemoryEventStore({ maxStreams: 0 })).toThrow(RangeError);
    expect(() => new MemoryEventStore({ maxEvents: 2.5 })).toThrow(RangeError);
    expect(() => new MemoryEventStore({ maxStreams: Number.POSITIVE_INFINITY, maxEvents: Number.POSITIVE_INFINITY })).not.toThrow();
  });

  it('refuses an append that would start one stream more than maxStreams, writing nothing; the streams it holds go on', async () => {
    const store = new MemoryEventStore({ maxStreams: 2 });
    await store.append('tasks/a', 0, [commit('a1', 1)]);
    await store.append('tasks/b', 0, [commit('b1', 1)]);
    const error = await refusal(store.append('tasks/c', 0, [commit('c1', 1)]));
    expect(error.code).toBe('LIMIT_EXCEEDED');
    expect(error.data).toEqual({ limit: 'maxStreams', max: 2 });
    expect(await store.info('tasks/c')).toEqual({ head: 0, oldestRetained: 1 });
    expect([...(await store.findCommands(['c1'])).keys()]).toEqual([]);
    expect(await store.streams()).toEqual(['tasks/a', 'tasks/b']);
    // Held streams take more, and the refused command id is free for a later try.
    await store.append('tasks/a', 1, [commit('a2', 2)]);
    expect(store.usage()).toEqual({ streams: 2, events: 3, commandRecords: 3, snapshots: 0 });
  });

  it('records refusals on a stream it does not hold without starting the stream, even at the bound', async () => {
    const store = new MemoryEventStore({ maxStreams: 1 });
    await store.append('tasks/a', 0, [commit('a1', 1)]);
    const refused: Commit = { commandId: 'no', fingerprint: 'fp:no', events: [], refusal: { code: 'COMMAND_REJECTED', message: 'no' } };
    await store.append('tasks/other', 0, [refused]);
    expect((await store.findCommands(['no'])).get('no')).toMatchObject({ stream: 'tasks/other', version: 0, refusal: { code: 'COMMAND_REJECTED' } });
    expect(await store.streams()).toEqual(['tasks/a']);
  });

  it('refuses an append that would retain more than maxEvents, and takes events again once compaction gave some back', async () => {
    const store = new MemoryEventStore({ maxEvents: 10 });
    await store.append('tasks/a', 0, [commit('a1', 1, 6)]);
    await store.append('tasks/b', 0, [commit('b1', 1, 3)]);
    const error = await refusal(store.append('tasks/b', 3, [commit('b2', 4, 2)]));
    expect(error.code).toBe('LIMIT_EXCEEDED');
    expect(error.data).toEqual({ limit: 'maxEvents', max: 10 });
    expect(await store.info('tasks/b')).toEqual({ head: 3, oldestRetained: 1 });
    // One more fits exactly.
    await store.append('tasks/b', 3, [commit('b3', 4, 1)]);
    expect(store.usage().events).toBe(10);
    // A snapshot at 5 lets the store drop a's first five events.
    await store.saveSnapshot({ stream: 'tasks/a', version: 5, state: {} });
    await store.compact('tasks/a', 6);
    expect(store.usage()).toMatchObject({ events: 5, snapshots: 1 });
    await store.append('tasks/b', 4, [commit('b4', 5, 5)]);
    expect(store.usage().events).toBe(10);
  });
});

describe('memory event store: at its bound, through a hub', () => {
  it('answers a command that would start a stream past maxStreams with LIMIT_EXCEEDED; other streams go on', async () => {
    const clock = new FakeClock();
    const store = new MemoryEventStore({ maxStreams: 2 });
    const errors: unknown[] = [];
    const hub = new Hub({ domains: builtInDomains, store, clock, onError: (error) => errors.push(error) });
    const link = createMemoryLink({ clock });
    hub.accept(link.server);
    const received: Array<{ id?: number; result?: any; error?: { code: number; data?: unknown } }> = [];
    link.client.frames.subscribe((frame) => {
      const decoded = JSON.parse(frame as string);
      received.push(...(Array.isArray(decoded) ? decoded : [decoded]));
    });
    let nextId = 1;
    const call = async (method: string, params: unknown) => {
      const id = nextId++;
      link.client.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      for (let turn = 0; turn < 200; turn++) {
        const answer = received.find((message) => message.id === id);
        if (answer) return answer;
        await clock.flush();
      }
      throw new Error(`no answer to ${method}`);
    };
    const create = (stream: string, id: string) => call('command', { id, stream, type: 'task.create', payload: { id: `t-${id}`, title: id } });
    await call('hello', { protocol: 1 });

    expect((await create('tasks/a', 'c1')).result).toMatchObject({ version: 1 });
    expect((await create('tasks/b', 'c2')).result).toMatchObject({ version: 1 });
    const refused = await create('tasks/c', 'c3');
    expect(refused.error).toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED, data: { limit: 'maxStreams', max: 2 } });
    expect(await hub.read('tasks/c')).toMatchObject({ version: 0 });
    expect((await create('tasks/a', 'c4')).result).toMatchObject({ version: 2 });
    // The refused id was not recorded: the same command is decided again (and refused again).
    expect((await create('tasks/c', 'c3')).error).toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED });
    expect(errors).toEqual([]);
    await hub.close();
  });

  it('stores versioned events with the keys in the order they always had', async () => {
    const store = new MemoryEventStore();
    const hub = new Hub({ domains: builtInDomains, store });
    await hub.execute({ id: 'k1', stream: 'tasks/keys', type: 'task.create', payload: { id: 't1', title: 'keys' } });
    const [event] = await store.read('tasks/keys', 1, 1);
    expect(event?.schemaVersion).toBeGreaterThan(1);
    expect(Object.keys(event!)).toEqual(['version', 'type', 'data', 'time', 'commandId', 'schemaVersion']);
    await hub.close();
  });
});

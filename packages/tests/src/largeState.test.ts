import { createClient, type LockstepClient } from '@lockstep/client';
import { builtInDomains, createJsonCodec, tasksDomain, type Codec, type TasksState } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { Hub, MemoryEventStore, type HubOptions } from '@lockstep/server';
import { webSocketConnector } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RawPeer } from './wsPeer.js';

/**
 * Streams whose state or whose catch-up is larger than a frame (1 MiB by default): every client
 * still gets them whole, over a real socket — snapshots in pages, event pages and live broadcasts cut
 * below a page — and a stream's state budget keeps any writer from making one unreadable.
 */

const KEY = 'large';
const STREAM = `tasks/${KEY}`;
/** Seventy tasks of 19,000 characters: about 1.35 MB of state, past the 1 MiB frame limit. */
const TASKS = 70;
const DESCRIPTION = 19_000;

const description = (n: number) => `${n}:`.padEnd(DESCRIPTION, 'abcdefghij "quoted" \\ é ✓ 😀 ');

async function startHub(options: Partial<HubOptions> = {}): Promise<{ hub: Hub; url: string }> {
  const hub = new Hub({ domains: builtInDomains, store: new MemoryEventStore(), ...options });
  const server = createWebSocketServer(hub, { port: 0 });
  onTestFinished(async () => {
    await hub.close();
    await server.close();
  });
  await server.ready;
  return { hub, url: `ws://127.0.0.1:${server.address().port}` };
}

function client(url: string, codec?: Codec): LockstepClient {
  const created = createClient({ connect: webSocketConnector(url, codec ? { codec } : {}), ...(codec && { codec }) });
  onTestFinished(() => created.close());
  return created;
}

/** Fills the stream with the large board through the hub, one command after another. */
async function fillBoard(hub: Hub, from = 0, to = TASKS): Promise<void> {
  for (let n = from; n < to; n++) {
    await hub.execute({ stream: STREAM, id: `fill:${n}`, type: 'task.create', payload: { id: `task_${n}`, title: `Task ${n}`, description: description(n) } });
  }
}

function expectWholeBoard(state: TasksState, count = TASKS): void {
  expect(Object.keys(state.tasks)).toHaveLength(count);
  for (let n = 0; n < count; n++) expect(state.tasks[`task_${n}`]?.description).toBe(description(n));
}

describe('a stream larger than a frame', () => {
  for (const [name, codec] of [
    ['json', undefined],
    ['msgpack', msgpackCodec],
  ] as const) {
    it(`reaches a fresh client whole over ws (${name}): the snapshot comes in pages`, async () => {
      const { hub, url } = await startHub();
      await fillBoard(hub);
      expect(JSON.stringify(hub.stream(STREAM).state).length).toBeGreaterThan(1024 * 1024);
      const fresh = client(url, codec);
      const board = fresh.stream(tasksDomain, KEY);
      await firstValueFrom(board.status$.pipe(filter((status) => status.status === 'online')));
      expectWholeBoard(board.getSnapshot());
      expect(board.version).toBe(TASKS);
      expect((await firstValueFrom(board.status$)).lastError).toBeUndefined();
      // And it follows live from there.
      await hub.execute({ stream: STREAM, id: 'after', type: 'task.update', payload: { id: 'task_3', status: 'completed' } });
      await board.waitFor(TASKS + 1);
      expect(board.getSnapshot().tasks['task_3']?.status).toBe('completed');
    });
  }

  it('sends the snapshot as pages no larger than a page, in order, right after the answer', async () => {
    const { hub, url } = await startHub({ pageBytes: 64 * 1024 });
    await fillBoard(hub, 0, 10);
    const peer = await RawPeer.connect(url);
    onTestFinished(() => void peer.socket.terminate());
    const hello = await peer.call('hello', { protocol: 1, clientId: 'raw-pages', capabilities: { snapshotPages: true } });
    expect(hello.result.capabilities.snapshotPages).toBe(true);
    const frames: string[] = [];
    peer.socket.on('message', (data) => frames.push((data as Buffer).toString()));
    const answer = await peer.call('subscribe', { stream: STREAM });
    expect(answer.result).toMatchObject({ stream: STREAM, version: 10, head: 10, snapshotPages: expect.any(Number) });
    expect(answer.result).not.toHaveProperty('snapshot');
    const pages = answer.result.snapshotPages as number;
    expect(pages).toBeGreaterThan(1);
    await expect.poll(() => frames.length).toBeGreaterThanOrEqual(pages + 1);
    const notes = frames.slice(1, pages + 1).map((frame) => JSON.parse(frame));
    expect(notes.map((note) => [note.method, note.params.page, note.params.pages, note.params.version])).toEqual(
      Array.from({ length: pages }, (_, page) => ['snapshot', page, pages, 10]),
    );
    for (const frame of frames.slice(1, pages + 1)) expect(frame.length).toBeLessThanOrEqual(64 * 1024);
    const state = JSON.parse(notes.map((note) => note.params.data).join('')) as TasksState;
    expect(state).toEqual(hub.stream(STREAM).state);
  });

  it('gives a peer that does not take pages the snapshot whole, as before', async () => {
    const { hub, url } = await startHub({ pageBytes: 64 * 1024 });
    await fillBoard(hub, 0, 10);
    const peer = await RawPeer.connect(url);
    onTestFinished(() => void peer.socket.terminate());
    await peer.call('hello', { protocol: 1, clientId: 'raw-whole' });
    const answer = await peer.call('subscribe', { stream: STREAM });
    expect(answer.result.snapshot).toEqual(hub.stream(STREAM).state);
  });

  it('catches a client up from far behind in event pages that each fit a page', async () => {
    const { hub, url } = await startHub({ pageBytes: 64 * 1024 });
    await fillBoard(hub);
    const peer = await RawPeer.connect(url);
    onTestFinished(() => void peer.socket.terminate());
    await peer.call('hello', { protocol: 1, clientId: 'raw-behind', capabilities: { snapshotPages: true } });
    const frames: string[] = [];
    peer.socket.on('message', (data) => frames.push((data as Buffer).toString()));
    // A client at version 0 (it has the empty board): the whole log, 1.35 MB of events, is its catch-up.
    const answer = await peer.call('subscribe', { stream: STREAM, since: 0 });
    expect(answer.result).toMatchObject({ version: expect.any(Number), head: TASKS });
    const versions: number[] = answer.result.events.map((event: { version: number }) => event.version);
    expect(versions.length).toBeGreaterThan(0);
    expect(versions.length).toBeLessThan(TASKS);
    await expect.poll(() => frames.slice(1).flatMap((frame) => JSON.parse(frame).params.events).length).toBe(TASKS - versions.length);
    for (const frame of frames) expect(frame.length).toBeLessThanOrEqual(64 * 1024);
    const notes = frames.slice(1).map((frame) => JSON.parse(frame));
    for (const note of notes) expect(note).toMatchObject({ method: 'events', params: { stream: STREAM, catchUp: true } });
    versions.push(...notes.flatMap((note) => note.params.events.map((event: { version: number }) => event.version)));
    expect(versions).toEqual(Array.from({ length: TASKS }, (_, n) => n + 1));
  });

  it('cuts a live batch of large commands into frames that fit, between commands', async () => {
    const { hub, url } = await startHub({ pageBytes: 64 * 1024 });
    const reader = client(url);
    const board = reader.stream(tasksDomain, KEY);
    await firstValueFrom(board.status$.pipe(filter((status) => status.status === 'online')));
    // Queued together, decided in one batch: one broadcast of ~1.35 MB without the cut.
    await Promise.all(
      Array.from({ length: TASKS }, (_, n) =>
        hub.execute({ stream: STREAM, id: `batch:${n}`, type: 'task.create', payload: { id: `task_${n}`, title: `Task ${n}`, description: description(n) } }),
      ),
    );
    await board.waitFor(TASKS);
    expectWholeBoard(board.getSnapshot());
  });

  it('says why a stream waits when a frame is too large for the client (lastError, not a silent resync)', async () => {
    const { hub, url } = await startHub();
    // A client that reads no frame above 8 KiB, in sync with the empty board…
    const small = client(url, createJsonCodec({ maxFrameBytes: 8 * 1024 }));
    const board = small.stream(tasksDomain, KEY);
    await firstValueFrom(board.status$.pipe(filter((status) => status.status === 'online')));
    // …then an event of 19,000 characters, which no page can make smaller, and one after it.
    const said = firstValueFrom(board.status$.pipe(filter((status) => status.lastError !== undefined)));
    await fillBoard(hub, 0, 1);
    await hub.execute({ stream: STREAM, id: 'after', type: 'task.update', payload: { id: 'task_0', status: 'completed' } });
    const status = await said;
    expect(status.lastError?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(status.status).not.toBe('online');
    expect(small.status.lastError).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
  });
});

describe('the state budget', () => {
  it('refuses the command that would take a stream past maxStateBytes, changing nothing, and names the reason', async () => {
    const { hub } = await startHub({ maxStateBytes: 100_000 });
    const version = async () => hub.stream(STREAM).version;
    let refused: unknown;
    let n = 0;
    for (; n < 20 && refused === undefined; n++) {
      await hub
        .execute({ stream: STREAM, id: `budget:${n}`, type: 'task.create', payload: { id: `task_${n}`, title: `Task ${n}`, description: description(n) } })
        .catch((error: unknown) => (refused = error));
    }
    expect(refused).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'stateBudgetExceeded', maxStateBytes: 100_000 } });
    const state = hub.stream(STREAM).state as TasksState;
    expect(JSON.stringify(state).length).toBeLessThanOrEqual(100_000);
    expect(Object.keys(state.tasks)).toHaveLength(n - 1);
    expect(await version()).toBe(n - 1);
    // What frees room is taken, and then a smaller task fits again.
    await hub.execute({ stream: STREAM, id: 'free', type: 'task.delete', payload: { id: 'task_0' } });
    await hub.execute({ stream: STREAM, id: 'small', type: 'task.create', payload: { id: 'task_small', title: 'Small' } });
    expect((hub.stream(STREAM).state as TasksState).tasks['task_small']).toBeDefined();
  });

  it('refuses only the command past the budget in a batch; the others of the batch are applied', async () => {
    const { hub } = await startHub({ maxStateBytes: 100_000 });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 8 }, (_, n) =>
        hub.execute({ stream: STREAM, id: `b:${n}`, type: 'task.create', payload: { id: `task_${n}`, title: `Task ${n}`, description: description(n) } }),
      ),
    );
    // In order: those that fit are applied, every one after them is refused for the budget.
    const applied = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
    expect(applied).toBeGreaterThan(1);
    expect(applied).toBeLessThan(8);
    expect(outcomes.slice(0, applied).every((outcome) => outcome.status === 'fulfilled')).toBe(true);
    for (const outcome of outcomes.slice(applied)) expect(outcome).toMatchObject({ status: 'rejected', reason: { data: { reason: 'stateBudgetExceeded' } } });
    const state = hub.stream(STREAM).state as TasksState;
    expect(Object.keys(state.tasks)).toHaveLength(applied);
    expect(JSON.stringify(state).length).toBeLessThanOrEqual(100_000);
    expect(hub.stream(STREAM).version).toBe(applied);
  });
});

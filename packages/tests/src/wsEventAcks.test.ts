import { builtInDomains } from '@lockstep/core';
import { Hub, MemoryEventStore } from '@lockstep/server';
import { createWebSocketServer } from '@lockstep/ws/server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RawPeer } from './wsPeer.js';

/**
 * The `eventAcks` capability on the wire, from a peer with no Lockstep client code: the hub leaves a
 * command unanswered exactly when the command's events reached the connection in a live broadcast,
 * and answers it in every other case. "Unanswered" is checked with a barrier: a second command on the
 * same stream, which the hub decides after the first and always answers (it is refused: no such
 * task). Everything the hub sends about the first comes before that answer.
 */

const STREAM = 'tasks/acks';

async function startHub(options: { catchUpPage?: number; authorize?: (identity: unknown, stream: string, action: string) => boolean } = {}): Promise<string> {
  const hub = new Hub({ domains: builtInDomains, store: new MemoryEventStore(), ...options });
  const server = createWebSocketServer(hub, { port: 0 });
  onTestFinished(async () => {
    await hub.close();
    await server.close();
  });
  await server.ready;
  return `ws://127.0.0.1:${server.address().port}`;
}

async function peer(url: string, capabilities: Record<string, unknown>): Promise<RawPeer> {
  const connected = await RawPeer.connect(url);
  onTestFinished(() => void connected.socket.terminate());
  const hello = await connected.call('hello', { protocol: 1, clientId: `peer-${Math.random().toString(36).slice(2)}`, capabilities });
  expect(hello.result.capabilities.eventAcks).toBe(true);
  return connected;
}

let barriers = 0;

/** Sends a command then the barrier; answers every message received up to the barrier's answer. */
async function commandThenBarrier(connected: RawPeer, params: Record<string, unknown>): Promise<{ commandRequest: number; messages: any[] }> {
  const stream = (params['stream'] as string | undefined) ?? STREAM;
  const commandRequest = connected.request('command', { stream, ...params });
  const barrier = connected.request('command', { id: `barrier:${++barriers}`, stream, type: 'task.delete', payload: { id: 'no_such_task' } });
  const { response, before } = await connected.response(barrier);
  expect(response.error).toMatchObject({ data: { reason: 'task.notFound' } });
  return { commandRequest, messages: before };
}

describe('eventAcks: a command whose events a client was sent live is not answered', () => {
  it('sends the live events and no ack to a subscribed client that asked for eventAcks', async () => {
    const url = await startHub();
    const client = await peer(url, { eventAcks: true });
    await client.call('subscribe', { stream: STREAM });
    const { messages } = await commandThenBarrier(client, { id: 'p:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    expect(messages).toEqual([
      {
        jsonrpc: '2.0',
        method: 'events',
        params: { stream: STREAM, events: [expect.objectContaining({ version: 1, type: 'task.created', commandId: 'p:1' })] },
      },
    ]);
    expect(client.unread).toBe(0);
  });

  it('sends every event of a command in one live notification, the last one carrying its version', async () => {
    const url = await startHub();
    const client = await peer(url, { eventAcks: true });
    await client.call('subscribe', { stream: STREAM });
    await commandThenBarrier(client, { id: 'p:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    await commandThenBarrier(client, { id: 'p:2', type: 'session.create', payload: { id: 's1' } });
    await commandThenBarrier(client, { id: 'p:3', type: 'session.addTask', payload: { sessionId: 's1', taskId: 'task_1' } });
    const { messages } = await commandThenBarrier(client, { id: 'p:4', type: 'task.delete', payload: { id: 'task_1' } });
    expect(messages).toHaveLength(1);
    expect(messages[0].params).not.toHaveProperty('catchUp');
    expect(messages[0].params.events.map((event: { version: number; commandId: string }) => [event.version, event.commandId])).toEqual([
      [4, 'p:4'],
      [5, 'p:4'],
    ]);
  });

  it('leaves the ack out behind an authorize hook too, and answers a write the hook refuses', async () => {
    const url = await startHub({ authorize: (_identity, stream, action) => !(stream === 'tasks/locked' && action === 'write') });
    const client = await peer(url, { eventAcks: true });
    await client.call('subscribe', { stream: STREAM });
    const { messages } = await commandThenBarrier(client, { id: 'p:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    expect(messages.map((message) => message.method ?? message.id)).toEqual(['events']);
    const refused = await client.call('command', { id: 'p:2', stream: 'tasks/locked', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    expect(refused.error).toMatchObject({ data: { stream: 'tasks/locked', action: 'write' } });
  });

  it('answers a command that asks for explicitAck, after its events', async () => {
    const url = await startHub();
    const client = await peer(url, { eventAcks: true });
    await client.call('subscribe', { stream: STREAM });
    const { commandRequest, messages } = await commandThenBarrier(client, {
      id: 'shared-key-1',
      type: 'task.create',
      payload: { id: 'task_1', title: 'One' },
      explicitAck: true,
    });
    expect(messages.map((message) => message.method ?? message.id)).toEqual(['events', commandRequest]);
    expect(messages[1].result).toEqual({ id: 'shared-key-1', stream: STREAM, version: 1 });
  });

  it('answers a client that did not ask for eventAcks, as before', async () => {
    const url = await startHub();
    const client = await peer(url, {});
    await client.call('subscribe', { stream: STREAM });
    const { commandRequest, messages } = await commandThenBarrier(client, { id: 'p:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    expect(messages.map((message) => message.method ?? message.id)).toEqual(['events', commandRequest]);
  });

  it('answers a command on a stream the client is not subscribed to', async () => {
    const url = await startHub();
    const client = await peer(url, { eventAcks: true });
    await client.call('subscribe', { stream: 'tasks/elsewhere' });
    const { commandRequest, messages } = await commandThenBarrier(client, { id: 'p:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    expect(messages).toEqual([{ jsonrpc: '2.0', id: commandRequest, result: { id: 'p:1', stream: STREAM, version: 1 } }]);
  });

  it('answers a command that produced no events, and a duplicate, with their acks', async () => {
    const url = await startHub();
    const client = await peer(url, { eventAcks: true });
    await client.call('subscribe', { stream: STREAM });
    await commandThenBarrier(client, { id: 'p:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    // The same title again: no change, no event.
    const unchanged = await commandThenBarrier(client, { id: 'p:2', type: 'task.update', payload: { id: 'task_1', title: 'One' } });
    expect(unchanged.messages).toEqual([{ jsonrpc: '2.0', id: unchanged.commandRequest, result: { id: 'p:2', stream: STREAM, version: 1 } }]);
    const again = await commandThenBarrier(client, { id: 'p:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    expect(again.messages).toEqual([{ jsonrpc: '2.0', id: again.commandRequest, result: { id: 'p:1', stream: STREAM, version: 1, duplicate: true } }]);
  });

  it('answers the writer while another subscriber gets the live events; the subscriber gets no ack of a command it did not send', async () => {
    const url = await startHub();
    const writer = await peer(url, { eventAcks: true });
    const watcher = await peer(url, { eventAcks: true });
    await watcher.call('subscribe', { stream: STREAM });
    const { commandRequest, messages } = await commandThenBarrier(writer, { id: 'w:1', type: 'task.create', payload: { id: 'task_1', title: 'One' } });
    expect(messages.map((message) => message.id)).toEqual([commandRequest]);
    const seen = await watcher.next();
    expect(seen).toMatchObject({ method: 'events', params: { stream: STREAM, events: [{ version: 1, commandId: 'w:1' }] } });
    await watcher.call('ping', {});
    expect(watcher.unread).toBe(0);
  });

  it('marks the pages of a catch-up catchUp: they stand for no ack, and a command after them is implied again', async () => {
    const url = await startHub({ catchUpPage: 2 });
    const writer = await peer(url, { eventAcks: true });
    for (let i = 1; i <= 6; i++)
      await writer.call('command', { id: `w:${i}`, stream: STREAM, type: 'task.create', payload: { id: `task_${i}`, title: `T${i}` } });
    const late = await peer(url, { eventAcks: true });
    const subscribed = await late.call('subscribe', { stream: STREAM, since: 0 });
    expect(subscribed.result.events.map((event: { version: number }) => event.version)).toEqual([1, 2]);
    const pages = [await late.next(), await late.next()];
    expect(pages.map((page) => [page.params.catchUp, page.params.events.map((event: { version: number }) => event.version)])).toEqual([
      [true, [3, 4]],
      [true, [5, 6]],
    ]);
    const { messages } = await commandThenBarrier(late, { id: 'l:1', type: 'task.update', payload: { id: 'task_1', title: 'Changed' } });
    expect(messages).toEqual([
      { jsonrpc: '2.0', method: 'events', params: { stream: STREAM, events: [expect.objectContaining({ version: 7, commandId: 'l:1' })] } },
    ]);
  });

  it('after a subscribe with since, a command is implied by its live events like any other', async () => {
    const url = await startHub();
    const writer = await peer(url, { eventAcks: true });
    for (let i = 1; i <= 3; i++)
      await writer.call('command', { id: `w:${i}`, stream: STREAM, type: 'task.create', payload: { id: `task_${i}`, title: `T${i}` } });
    const late = await peer(url, { eventAcks: true });
    // Subscribing with since: the missed events come in the answer, nothing is sent live for them.
    const subscribed = await late.call('subscribe', { stream: STREAM, since: 1 });
    expect(subscribed.result.events.map((event: { version: number }) => event.version)).toEqual([2, 3]);
    const { messages } = await commandThenBarrier(late, { id: 'l:1', type: 'task.update', payload: { id: 'task_1', title: 'Changed' } });
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ method: 'events', params: { stream: STREAM, events: [{ version: 4, commandId: 'l:1' }] } });
  });
});

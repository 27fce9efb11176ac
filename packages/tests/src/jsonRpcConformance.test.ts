import { connect as connectSocket } from 'node:net';
import { createClient, type LockstepClient } from '@lockstep/client';
import { ErrorCodes, createMemoryLink, defineService, jsonCodec, method, notification, type Transport } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { createStdioTransport } from '@lockstep/stdio';
import { webSocketTransport } from '@lockstep/ws';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as z from 'zod';
import { startWorld, type Peer, type TransportKind, type World } from './attack/world.js';

/**
 * JSON-RPC 2.0 conformance of the hub, over every transport: the examples of the specification
 * (https://www.jsonrpc.org/specification#examples) adapted to a `math` service the hub serves, every
 * kind of id, batches with and without the batch capability, and notifications, never answered. Then
 * typed calls both ways between the `@lockstep/client` client and the hub over each transport.
 *
 * Where lockstep/1 chooses among what the specification allows, the cases say so: a request with
 * `id: null`, a fractional or unsafe-integer id, or a string id over 128 characters is refused with
 * INVALID_REQUEST and `id: null`; a batch is framing (answers come in whatever frames, matched by id),
 * and is refused whole without the capability (docs/protocol.md, "Batches").
 */

const math = defineService('math', '1.0.0', {
  /** By position `[minuend, subtrahend]` or by name `{minuend, subtrahend}`, as in the specification. */
  subtract: method({
    params: z.union([z.tuple([z.number(), z.number()]), z.object({ minuend: z.number(), subtrahend: z.number() })]),
    result: z.number(),
  }),
  sum: method({ params: z.array(z.number()), result: z.number() }),
  getData: method({ params: z.undefined(), result: z.tuple([z.string(), z.number()]) }),
  update: notification({ params: z.array(z.number()) }),
  notifyHello: notification({ params: z.array(z.number()) }),
});

type Kind = 'memory' | TransportKind;
const KINDS: readonly Kind[] = ['memory', 'ws-json', 'ws-msgpack', 'stdio'];
const textual = (kind: Kind) => kind !== 'ws-msgpack';

/** A raw peer over an in-memory link, with the same shape as the attack suite's peers. */
function memoryPeer(world: World): Peer {
  const link = createMemoryLink();
  world.hub.accept(link.server);
  const inbox: unknown[] = [];
  const waiting: Array<(message: unknown) => void> = [];
  let nextId = 1;
  link.client.frames.subscribe((frame) => {
    const message: unknown = JSON.parse(frame as string);
    const waiter = waiting.shift();
    if (waiter) waiter(message);
    else inbox.push(message);
  });
  const closed = new Promise<{ reason: string }>((resolve) =>
    link.client.state.subscribe((state) => {
      if (state.status === 'closed') resolve({ reason: state.reason });
    }),
  );
  const next = async (): Promise<any> => (inbox.length > 0 ? inbox.shift() : new Promise((resolve) => waiting.push(resolve)));
  const peer: Peer = {
    kind: 'ws-json',
    sendFrame: (frame) => link.client.send(frame),
    send: (message) => link.client.send(JSON.stringify(message)),
    request: (method, params) => {
      const id = nextId++;
      peer.send(params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params });
      return id;
    },
    next,
    async response(id) {
      const before: any[] = [];
      for (;;) {
        const message = await next();
        if (message.method === undefined && message.id === id) return { response: message, before };
        before.push(message);
      }
    },
    async call(method, params) {
      return (await peer.response(peer.request(method, params))).response;
    },
    get unread() {
      return inbox.length;
    },
    closed,
    terminate: () => link.client.close('terminated'),
  };
  onTestFinished(() => peer.terminate());
  return peer;
}

interface Setup {
  world: World;
  peer: Peer;
  /** Notifications of the math service the hub received, in order. */
  heard: Array<{ method: string; params: number[] }>;
  /** Sends a frame in the peer's codec, or (textual transports) a JSON text as it is. */
  raw(text: string): void;
  /**
   * What the frames sent before caused: every message until the answers to a ping and to a `math.sum`
   * sent now (answers to different requests may come in any order, and a service call takes the same
   * path as the barrier's), and at least `expected` of them.
   */
  drain(expected?: number): Promise<any[]>;
}

async function setup(kind: Kind, batch: boolean): Promise<Setup> {
  const world = await startWorld({ hub: { rateLimit: false } });
  world.hub.serve(math, {
    subtract: (params) => (Array.isArray(params) ? params[0] - params[1] : params.minuend - params.subtrahend),
    sum: (numbers) => numbers.reduce((a, b) => a + b, 0),
    getData: () => ['hello', 5] as [string, number],
  });
  const heard: Setup['heard'] = [];
  world.hub.on(math.update, (params) => heard.push({ method: 'math.update', params }));
  world.hub.on(math.notifyHello, (params) => heard.push({ method: 'math.notifyHello', params }));
  const peer = kind === 'memory' ? memoryPeer(world) : await world.connect(kind);
  const hello = await peer.call('hello', { protocol: 1, clientId: `conformance-${kind}`, capabilities: { batch } });
  expect(hello.result.capabilities.batch).toBe(true);
  expect(hello.result.services).toEqual([{ name: 'math', version: '1.0.0' }]);
  let pings = 0;
  return {
    world,
    peer,
    heard,
    raw: (text) => (textual(kind) ? peer.sendFrame(text) : peer.sendFrame(msgpackCodec.encode(JSON.parse(text)))),
    async drain(expected = 0) {
      const barriers = new Set([`ping-${++pings}`, `sum-${pings}`]);
      peer.send({ jsonrpc: '2.0', id: `ping-${pings}`, method: 'ping' });
      peer.send({ jsonrpc: '2.0', id: `sum-${pings}`, method: 'math.sum', params: [] });
      const messages: any[] = [];
      while (barriers.size > 0 || messages.length < expected) {
        const message = await peer.next();
        // With batches, answers may come as arrays of messages: each is one message.
        for (const one of Array.isArray(message) ? message : [message]) {
          if (!barriers.delete(one.id)) messages.push(one);
        }
      }
      return messages;
    },
  };
}

/** Answers in the order of their ids (numbers first, then strings), as they may come in any order. */
function byId(answers: any[]): any[] {
  return [...answers].sort((a, b) => String(a.id).localeCompare(String(b.id), 'en', { numeric: true }));
}

/** Every response is a JSON-RPC 2.0 response: `jsonrpc`, an `id`, and exactly one of `result` or `error`. */
function expectResponse(message: any): void {
  expect(message.jsonrpc).toBe('2.0');
  expect('id' in message).toBe(true);
  expect('result' in message !== 'error' in message, JSON.stringify(message)).toBe(true);
  if (message.error) {
    expect(Number.isInteger(message.error.code)).toBe(true);
    expect(typeof message.error.message).toBe('string');
  }
}

describe.each(KINDS)('JSON-RPC 2.0 conformance over %s', (kind) => {
  describe('the specification’s examples', () => {
    it('calls with positional and named parameters', async () => {
      const { peer, drain } = await setup(kind, false);
      peer.send({ jsonrpc: '2.0', method: 'math.subtract', params: [42, 23], id: 1 });
      peer.send({ jsonrpc: '2.0', method: 'math.subtract', params: [23, 42], id: 2 });
      peer.send({ jsonrpc: '2.0', method: 'math.subtract', params: { subtrahend: 23, minuend: 42 }, id: 3 });
      peer.send({ jsonrpc: '2.0', method: 'math.subtract', params: { minuend: 42, subtrahend: 23 }, id: 4 });
      const answers = byId(await drain(4));
      answers.forEach(expectResponse);
      expect(answers).toEqual([
        { jsonrpc: '2.0', result: 19, id: 1 },
        { jsonrpc: '2.0', result: -19, id: 2 },
        { jsonrpc: '2.0', result: 19, id: 3 },
        { jsonrpc: '2.0', result: 19, id: 4 },
      ]);
    });

    it('handles notifications and never answers them, known or not', async () => {
      const { peer, drain, heard } = await setup(kind, false);
      peer.send({ jsonrpc: '2.0', method: 'math.update', params: [1, 2, 3, 4, 5] });
      peer.send({ jsonrpc: '2.0', method: 'foobar' });
      peer.send({ jsonrpc: '2.0', method: 'math.update', params: 'not numbers' });
      expect(await drain()).toEqual([]);
      expect(heard).toEqual([{ method: 'math.update', params: [1, 2, 3, 4, 5] }]);
    });

    it('answers a method that does not exist with -32601', async () => {
      const { peer, drain } = await setup(kind, false);
      peer.send({ jsonrpc: '2.0', method: 'foobar', id: '1' });
      peer.send({ jsonrpc: '2.0', method: 'math.foobar', id: '2' });
      const answers = byId(await drain(2));
      answers.forEach(expectResponse);
      expect(answers.map((answer) => [answer.id, answer.error.code])).toEqual([
        ['1', -32601],
        ['2', -32601],
      ]);
    });

    // Invalid JSON text has no MessagePack form: registered for the textual transports only.
    if (textual(kind))
      it('answers invalid JSON with -32700 and id null', async () => {
        const { raw, drain } = await setup(kind, false);
        raw('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]');
        const answers = await drain();
        expect(answers).toEqual([{ jsonrpc: '2.0', id: null, error: { code: -32700, message: expect.any(String) } }]);
      });

    it('answers an invalid Request object with -32600 and id null', async () => {
      const { raw, drain } = await setup(kind, false);
      raw('{"jsonrpc": "2.0", "method": 1, "params": "bar"}');
      const [answer, ...rest] = await drain();
      expect(rest).toEqual([]);
      expectResponse(answer);
      expect(answer).toMatchObject({ id: null, error: { code: -32600 } });
    });

    // Invalid JSON text has no MessagePack form: registered for the textual transports only.
    if (textual(kind))
      it('answers a batch of invalid JSON with one -32700', async () => {
        const { raw, drain } = await setup(kind, true);
        raw('[{"jsonrpc": "2.0", "method": "math.sum", "params": [1,2,4], "id": "1"},{"jsonrpc": "2.0", "method"]');
        expect(await drain()).toEqual([{ jsonrpc: '2.0', id: null, error: { code: -32700, message: expect.any(String) } }]);
      });

    it.each([true, false])('answers an empty array with one -32600 (batch capability: %s)', async (batch) => {
      const { raw, drain } = await setup(kind, batch);
      raw('[]');
      const answers = await drain();
      expect(answers).toEqual([{ jsonrpc: '2.0', id: null, error: expect.objectContaining({ code: -32600, message: expect.any(String) }) }]);
    });

    it('with the batch capability, answers each invalid element of a batch with its own -32600', async () => {
      const { raw, drain } = await setup(kind, true);
      raw('[1]');
      raw('[1,2,3]');
      const answers = await drain();
      expect(answers).toHaveLength(4);
      for (const answer of answers) expect(answer).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600 } });
    });

    it('without the batch capability, refuses a batch whole with one -32600 and handles none of it', async () => {
      const { raw, drain, heard } = await setup(kind, false);
      raw('[1,2,3]');
      raw('[{"jsonrpc": "2.0", "method": "math.sum", "params": [1,2,4], "id": "1"}, {"jsonrpc": "2.0", "method": "math.notifyHello", "params": [7]}]');
      const answers = await drain();
      expect(answers).toHaveLength(2);
      for (const answer of answers)
        expect(answer).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, message: expect.stringContaining('batch') } });
      expect(heard).toEqual([]);
    });

    it('with the batch capability, handles a mixed batch: every request answered by id, notifications not', async () => {
      const { raw, drain, heard } = await setup(kind, true);
      raw(
        '[' +
          '{"jsonrpc": "2.0", "method": "math.sum", "params": [1,2,4], "id": "1"},' +
          '{"jsonrpc": "2.0", "method": "math.notifyHello", "params": [7]},' +
          '{"jsonrpc": "2.0", "method": "math.subtract", "params": [42,23], "id": "2"},' +
          '{"foo": "boo"},' +
          '{"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},' +
          '{"jsonrpc": "2.0", "method": "math.getData", "id": "9"}' +
          ']',
      );
      const answers = await drain(5);
      answers.forEach(expectResponse);
      const byId = (id: string | null) => answers.filter((answer) => answer.id === id);
      expect(byId('1')).toEqual([{ jsonrpc: '2.0', result: 7, id: '1' }]);
      expect(byId('2')).toEqual([{ jsonrpc: '2.0', result: 19, id: '2' }]);
      expect(byId(null)).toMatchObject([{ error: { code: -32600 } }]);
      expect(byId('5')).toMatchObject([{ error: { code: -32601 } }]);
      expect(byId('9')).toEqual([{ jsonrpc: '2.0', result: ['hello', 5], id: '9' }]);
      expect(answers).toHaveLength(5);
      expect(heard).toEqual([{ method: 'math.notifyHello', params: [7] }]);
    });

    it('with the batch capability, answers nothing to a batch of notifications', async () => {
      const { raw, drain, heard } = await setup(kind, true);
      raw('[{"jsonrpc": "2.0", "method": "math.notifyHello", "params": [1,2,4]},{"jsonrpc": "2.0", "method": "math.notifyHello", "params": [7]}]');
      expect(await drain()).toEqual([]);
      expect(heard.map(({ params }) => params)).toEqual([[1, 2, 4], [7]]);
    });
  });

  describe('ids', () => {
    const echoed: Array<[string, string | number]> = [
      ['a number', 1],
      ['zero', 0],
      ['a negative number', -5],
      ['the largest safe integer', Number.MAX_SAFE_INTEGER],
      ['a string', 'abc'],
      ['a numeric string', '1'],
      ['an empty string', ''],
      ['a string of 128 characters', 'x'.repeat(128)],
    ];
    it.each(echoed)('answers a request whose id is %s with that exact id', async (_, id) => {
      const { peer, drain } = await setup(kind, false);
      peer.send({ jsonrpc: '2.0', method: 'math.subtract', params: [3, 1], id });
      peer.send({ jsonrpc: '2.0', method: 'math.nope', id });
      const answers = await drain(2);
      expect(answers).toHaveLength(2);
      // Same id twice: told apart by their content (the error, sent without waiting, comes first).
      expect(answers).toEqual(
        expect.arrayContaining([
          { jsonrpc: '2.0', id, result: 2 },
          { jsonrpc: '2.0', id, error: { code: -32601, message: expect.any(String) } },
        ]),
      );
    });

    const refused: Array<[string, string]> = [
      ['null', 'null'],
      ['fractional', '1.5'],
      ['beyond the safe integers', '9007199254740993'],
      ['huge', '1e300'],
      ['an object', '{"a":1}'],
      ['an array', '[1]'],
      ['a boolean', 'true'],
    ];
    it.each(refused)('answers a request whose id is %s with -32600 and id null', async (_, id) => {
      const { raw, drain } = await setup(kind, false);
      raw(`{"jsonrpc":"2.0","method":"math.subtract","params":[3,1],"id":${id}}`);
      const answers = await drain();
      expect(answers).toEqual([{ jsonrpc: '2.0', id: null, error: expect.objectContaining({ code: -32600, message: expect.any(String) }) }]);
    });

    it('answers a request whose id is a string over 128 characters with -32600, and that id (it could be read)', async () => {
      const { peer, drain } = await setup(kind, false);
      const id = 'x'.repeat(129);
      peer.send({ jsonrpc: '2.0', method: 'math.subtract', params: [3, 1], id });
      expect(await drain()).toEqual([{ jsonrpc: '2.0', id, error: expect.objectContaining({ code: -32600 }) }]);
    });
  });

  describe('messages that are neither request, notification nor response', () => {
    it.each([
      ['an id and nothing else', '{"jsonrpc":"2.0","id":5}', 5],
      ['a string id and nothing else', '{"jsonrpc":"2.0","id":"q"}', 'q'],
      ['nothing at all', '{"jsonrpc":"2.0"}', null],
      ['params without a method', '{"jsonrpc":"2.0","id":6,"params":[1]}', 6],
      ['no jsonrpc member', '{"id":7,"method":"ping"}', 7],
    ] as const)('answers %s with -32600', async (_, text, id) => {
      const { raw, drain } = await setup(kind, false);
      raw(text);
      const answers = await drain();
      expect(answers).toEqual([{ jsonrpc: '2.0', id, error: expect.objectContaining({ code: ErrorCodes.INVALID_REQUEST, message: expect.any(String) }) }]);
    });

    it('ignores a response to nothing it asked (no answer to an answer)', async () => {
      const { raw, drain } = await setup(kind, false);
      raw('{"jsonrpc":"2.0","id":5,"result":19}');
      raw('{"jsonrpc":"2.0","id":"x","error":{"code":-32601,"message":"Method not found"}}');
      raw('{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}');
      expect(await drain()).toEqual([]);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Typed calls both ways with the real client, over each transport
// ---------------------------------------------------------------------------------------------

const desk = defineService('desk', '1.0.0', {
  ask: method({ params: z.object({ question: z.string() }), result: z.object({ answer: z.string() }) }),
  note: notification({ params: z.object({ text: z.string() }) }),
});
const viewer = defineService('viewer', '2.3.0', {
  show: method({ params: z.object({ pane: z.string() }), result: z.object({ shown: z.literal(true), by: z.string() }) }),
  flash: notification({ params: z.object({ times: z.number().int() }) }),
});

async function clientTransport(world: World, kind: Kind): Promise<{ connect: () => Transport | Promise<Transport>; codec: typeof jsonCodec }> {
  switch (kind) {
    case 'memory':
      return {
        codec: jsonCodec,
        connect: () => {
          const link = createMemoryLink();
          world.hub.accept(link.server);
          return link.client;
        },
      };
    case 'ws-json':
      return { codec: jsonCodec, connect: () => webSocketTransport(world.url, { codec: jsonCodec }) };
    case 'ws-msgpack':
      return { codec: msgpackCodec, connect: () => webSocketTransport(world.url, { codec: msgpackCodec }) };
    case 'stdio':
      return {
        codec: jsonCodec,
        connect: () =>
          new Promise((resolve, reject) => {
            const socket = connectSocket(world.stdioPath);
            socket.once('connect', () => resolve(createStdioTransport({ input: socket, output: socket })));
            socket.once('error', reject);
          }),
      };
  }
}

describe.each(KINDS)('typed calls both ways over %s', (kind) => {
  it('client → hub and hub → client calls and notifications, validated and typed', async () => {
    const world = await startWorld();
    world.hub.serve(desk, { ask: ({ question }, { clientId }) => ({ answer: `${clientId} asked ${question}` }) });
    const notes: string[] = [];
    world.hub.on(desk.note, ({ text }) => notes.push(text));
    const { connect, codec } = await clientTransport(world, kind);
    const client: LockstepClient = createClient({ connect, codec, clientId: `typed-${kind}` });
    onTestFinished(() => client.close());
    const flashes: number[] = [];
    client.serve(viewer, { show: ({ pane }) => ({ shown: true as const, by: `${kind}:${pane}` }) });
    client.on(viewer.flash, ({ times }) => flashes.push(times));
    await firstValueFrom(client.status$.pipe(filter(({ status }) => status === 'online')));

    expect(await client.call(desk.ask, { question: 'why' })).toEqual({ answer: `typed-${kind} asked why` });
    expect(await world.hub.call({ clientId: `typed-${kind}` }, viewer.show, { pane: 'p1' })).toEqual({ shown: true, by: `${kind}:p1` });
    expect(client.notify(desk.note, { text: 'noted' })).toBe(true);
    expect(world.hub.notify({ clientId: `typed-${kind}` }, viewer.flash, { times: 3 })).toBe(true);
    // A round trip each way behind the notifications: they have arrived by then (ordered transports).
    await client.call(desk.ask, { question: 'again' });
    await world.hub.call({ clientId: `typed-${kind}` }, viewer.show, { pane: 'p2' });
    expect(notes).toEqual(['noted']);
    expect(flashes).toEqual([3]);
    await expect(client.call(desk.ask, { question: 7 } as never)).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    expect(world.errors).toEqual([]);
  });
});

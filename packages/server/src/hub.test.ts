import {
  ErrorCodes,
  MAX_BATCH_MESSAGES,
  builtInDomains,
  createMemoryLink,
  defineDomain,
  reject,
  type ErrorCode,
  type MemoryLink,
  type OrchestrationState,
} from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { FakeClock, TestPeer, type PeerMessage } from '@lockstep/core/testing';
import { HUB_DEFAULTS, Hub, MAX_PAYLOAD_DEPTH, type HubOptions } from './hub.js';
import { MemoryEventStore } from './memoryEventStore.js';

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const counter = defineDomain({
  name: 'counter',
  initialState: () => ({ n: 0 }),
  commands: {
    add: z.object({ by: z.number().int() }),
    noop: z.object({}),
  },
  events: { added: z.object({ by: z.number().int() }) },
  decide: {
    add: ({ by }, state) => {
      if (state.n + by < 0) reject('counter.negative', 'would go negative', { n: state.n });
      return [{ type: 'added', data: { by } }];
    },
    noop: () => [],
  },
  evolve: {
    added: (draft, { by }) => {
      draft.n += by;
    },
  },
});

/** A decoded JSON-RPC message as the hub sent it. */
type Msg = PeerMessage;

/** Speaks raw lockstep/1 frames over one end of a memory link: a TestPeer, with this file's helpers. */
class Wire extends TestPeer {
  constructor(readonly link: MemoryLink) {
    super(link.client);
  }

  sendRaw(text: string): void {
    this.sendFrame(text);
  }

  async hello(params: Record<string, unknown> = {}): Promise<Msg> {
    const answer = await this.call('hello', { protocol: 1, ...params });
    expect(answer.error).toBeUndefined();
    return answer;
  }

  /** Every `events` notification received for `stream`, in order. */
  events(stream: string): Array<{ version: number; type: string; data: any; commandId?: string }> {
    return this.received.filter((m) => m.method === 'events' && m.params.stream === stream).flatMap((m) => m.params.events);
  }

  override close(): void {
    super.close('test done');
  }
}

async function until<T>(clock: FakeClock, probe: () => T | undefined, turns = 500): Promise<T> {
  for (let i = 0; i < turns; i++) {
    const value = probe();
    if (value !== undefined) return value;
    await clock.flush();
  }
  throw new Error(`nothing arrived within ${turns} turns`);
}

interface Setup {
  hub: Hub;
  store: MemoryEventStore;
  clock: FakeClock;
  connect(): Wire;
  greeted(hello?: Record<string, unknown>): Promise<Wire>;
}

function setup(options: Partial<HubOptions> = {}, store = new MemoryEventStore(), clock = new FakeClock()): Setup {
  const errors: unknown[] = [];
  const hub = new Hub({ domains: [counter, ...builtInDomains], store, clock, onError: (error) => errors.push(error), ...options });
  const connect = () => {
    const link = createMemoryLink({ clock });
    hub.accept(link.server);
    return new Wire(link);
  };
  return {
    hub,
    store,
    clock,
    connect,
    async greeted(hello = {}) {
      const wire = connect();
      await wire.hello(hello);
      return wire;
    },
  };
}

const WATCHED = ['counter/a', 'counter/b', 'tasks/p1', 'orchestration/default', 'focus/p1'] as const;

async function readAll(hub: Hub): Promise<Record<string, { state: unknown; version: number }>> {
  const out: Record<string, { state: unknown; version: number }> = {};
  for (const name of WATCHED) {
    const { state, version } = await hub.read(name);
    out[name] = { state: structuredClone(state), version };
  }
  return out;
}

function expectCode(answer: Msg, code: ErrorCode): NonNullable<Msg['error']> {
  expect(answer.result, `expected ${code}, got a result`).toBeUndefined();
  expect(answer.error?.code, `expected ${code} (${ErrorCodes[code]}), got ${JSON.stringify(answer.error)}`).toBe(ErrorCodes[code]);
  return answer.error!;
}

let commandCounter = 0;
const nextId = () => `cmd-${++commandCounter}`;

function add(stream: string, by: number, extra: Record<string, unknown> = {}) {
  return { id: nextId(), stream, type: 'add', payload: { by }, ...extra };
}

/** Seeds some state so "nothing changed" is a meaningful check. */
async function seed(hub: Hub): Promise<void> {
  await hub.execute(add('counter/a', 5));
  await hub.execute({ id: nextId(), stream: 'tasks/p1', type: 'task.create', payload: { id: 't1', title: 'first' } });
  await hub.execute({ id: nextId(), stream: 'orchestration/default', type: 'workspace.setDesired', payload: { workspaceId: 'w1', desired: 2 } });
}

// ---------------------------------------------------------------------------------------------
// Bad input: an error with the documented code, never a crash, never a change of state
// ---------------------------------------------------------------------------------------------

describe('hub: bad input is answered with the documented error and changes nothing', () => {
  it('answers invalid JSON with PARSE_ERROR and id null', async () => {
    const { hub, connect } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = connect();
    wire.sendRaw('{"jsonrpc":"2.0","id":1,"method":');
    expectCode(await wire.response(null), 'PARSE_ERROR');
    expect(await readAll(hub)).toEqual(before);
  });

  it('answers a JSON-RPC batch with INVALID_REQUEST', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    wire.send([{ jsonrpc: '2.0', id: 7, method: 'command', params: add('counter/a', 1) }]);
    expectCode(await wire.response(null), 'INVALID_REQUEST');
    await hub.stream('counter/a').settled();
    expect(await readAll(hub)).toEqual(before);
  });

  it.each([
    ['no jsonrpc member', { id: 3, method: 'ping' }, 3],
    ['jsonrpc 1.0', { jsonrpc: '1.0', id: 'abc', method: 'ping' }, 'abc'],
    ['a method that is not a string', { jsonrpc: '2.0', id: 4, method: 42 }, 4],
    ['a fractional id', { jsonrpc: '2.0', id: 1.5, method: 'ping' }, null],
    ['a number', 42, null],
    ['null', null, null],
    ['a string', 'hello', null],
  ])('answers a message that is not JSON-RPC 2.0 (%s) with INVALID_REQUEST and its id', async (_, message, id) => {
    const { hub, connect } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = connect();
    wire.send(message);
    expectCode(await wire.response(id), 'INVALID_REQUEST');
    expect(await readAll(hub)).toEqual(before);
  });

  it('answers an unknown method with METHOD_NOT_FOUND', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    expectCode(await wire.call('frobnicate', {}), 'METHOD_NOT_FOUND');
    expectCode(await wire.call('__proto__', {}), 'METHOD_NOT_FOUND');
    expectCode(await wire.call('constructor', {}), 'METHOD_NOT_FOUND');
    expectCode(await wire.call('toString', {}), 'METHOD_NOT_FOUND');
    expectCode(await wire.call('events', { stream: 'counter/a', events: [] }), 'METHOD_NOT_FOUND');
    expect(await readAll(hub)).toEqual(before);
    expect(hub.connectionCount).toBe(1);
  });

  it('refuses subscribe, unsubscribe and command before hello with HANDSHAKE_REQUIRED', async () => {
    const { hub, connect } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = connect();
    expectCode(await wire.call('subscribe', { stream: 'counter/a' }), 'HANDSHAKE_REQUIRED');
    expectCode(await wire.call('unsubscribe', { stream: 'counter/a' }), 'HANDSHAKE_REQUIRED');
    expectCode(await wire.call('command', add('counter/a', 1)), 'HANDSHAKE_REQUIRED');
    await hub.stream('counter/a').settled();
    expect(await readAll(hub)).toEqual(before);
    expect(wire.events('counter/a')).toEqual([]);
  });

  it('refuses protocol 2 with UNSUPPORTED_PROTOCOL and the supported versions', async () => {
    const { hub, connect } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = connect();
    const error = expectCode(await wire.call('hello', { protocol: 2 }), 'UNSUPPORTED_PROTOCOL');
    expect(error.data).toEqual({ supported: [1] });
    // the connection stays before the handshake …
    expectCode(await wire.call('subscribe', { stream: 'counter/a' }), 'HANDSHAKE_REQUIRED');
    // … and a hello with a supported version succeeds afterwards
    await wire.hello();
    expect(await readAll(hub)).toEqual(before);
  });

  it('refuses a second hello on the same connection with INVALID_REQUEST', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted({ clientId: 'c1' });
    expectCode(await wire.call('hello', { protocol: 1, clientId: 'c2' }), 'INVALID_REQUEST');
    expect(await readAll(hub)).toEqual(before);
  });

  it('refuses a second hello pipelined before the first is answered with INVALID_REQUEST', async () => {
    const { connect } = setup();
    const wire = connect();
    const first = wire.sendRequest('hello', { protocol: 1, clientId: 'c1' });
    const second = wire.sendRequest('hello', { protocol: 1, clientId: 'c2' });
    expect((await wire.response(first)).result).toBeDefined();
    expectCode(await wire.response(second), 'INVALID_REQUEST');
  });

  it('answers commands pipelined behind hello once hello is answered, as it answers a greeted connection', async () => {
    const { hub, connect } = setup({ authenticate: async () => ({ id: 'alice' }) });
    await seed(hub);
    const wire = connect();
    const hello = wire.sendRequest('hello', { protocol: 1, clientId: 'c1' });
    const applied = wire.sendRequest('command', add('counter/a', 2));
    const invalid = wire.sendRequest('command', { id: nextId(), stream: 'counter/a', payload: {} });
    const unknown = wire.sendRequest('command', { id: nextId(), stream: 'nope/x', type: 'add', payload: { by: 1 } });
    const rejected = wire.sendRequest('command', add('counter/a', -100));
    expect((await wire.response(applied)).result).toMatchObject({ stream: 'counter/a', version: 2 });
    expectCode(await wire.response(invalid), 'INVALID_PARAMS');
    expectCode(await wire.response(unknown), 'UNKNOWN_STREAM');
    expect(expectCode(await wire.response(rejected), 'COMMAND_REJECTED').data).toMatchObject({ reason: 'counter.negative' });
    // The hello's answer leaves first, even before refusals that need no stream.
    const order = wire.received.filter((m) => m.method === undefined).map((m) => m.id);
    expect(order[0]).toBe(hello);
    expect(new Set(order)).toEqual(new Set([hello, applied, invalid, unknown, rejected]));
    expect((await hub.read('counter/a')).state).toEqual({ n: 7 });
  });

  it('refuses commands pipelined behind a refused hello with HANDSHAKE_REQUIRED, after the refusal', async () => {
    const { hub, connect } = setup({ authenticate: async () => undefined });
    await seed(hub);
    const before = await readAll(hub);
    const wire = connect();
    const hello = wire.sendRequest('hello', { protocol: 1, token: 'wrong' });
    const command = wire.sendRequest('command', add('counter/a', 1));
    expectCode(await wire.response(command), 'HANDSHAKE_REQUIRED');
    expect(wire.received.filter((m) => m.method === undefined).map((m) => m.id)).toEqual([hello, command]);
    expectCode(wire.received[0]!, 'UNAUTHORIZED');
    await hub.stream('counter/a').settled();
    expect(await readAll(hub)).toEqual(before);
  });

  it.each([
    ['hello', { protocol: '1' }],
    ['hello', { protocol: 1, clientId: 'has spaces' }],
    ['hello', 'not an object'],
    ['subscribe', {}],
    ['subscribe', { stream: 'counter/a', since: -1 }],
    ['subscribe', { stream: 'counter/a', since: 1.5 }],
    ['unsubscribe', { stream: 42 }],
    ['command', {}],
    ['command', { ...add('counter/a', 1), id: '' }],
    ['command', { ...add('counter/a', 1), expectedVersion: -3 }],
    ['command', { id: 'x', stream: 'counter/a', payload: {} }],
    ['ping', 5],
  ])('answers invalid params of %s (%j) with INVALID_PARAMS and zod issues', async (method, params) => {
    const { hub, connect } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = connect();
    if (method !== 'hello') await wire.hello();
    const error = expectCode(await wire.call(method, params), 'INVALID_PARAMS');
    expect(Array.isArray(error.data?.issues)).toBe(true);
    expect(error.data.issues.length).toBeGreaterThan(0);
    await hub.stream('counter/a').settled();
    expect(await readAll(hub)).toEqual(before);
  });

  it('answers a stream of an unknown domain with UNKNOWN_STREAM', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    const onSubscribe = expectCode(await wire.call('subscribe', { stream: 'nope/x' }), 'UNKNOWN_STREAM');
    expect(onSubscribe.data.domains).toEqual(expect.arrayContaining(['counter', 'tasks']));
    expectCode(await wire.call('command', { id: nextId(), stream: 'nope/x', type: 'add', payload: { by: 1 } }), 'UNKNOWN_STREAM');
    expect(await readAll(hub)).toEqual(before);
  });

  it.each(['../etc', 'Tasks/x', 'tasks/', 'tasks/a/b', '/x', 'tasks/.hidden', ''])('refuses the invalid stream name %j with INVALID_PARAMS', async (stream) => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    expectCode(await wire.call('subscribe', { stream }), 'INVALID_PARAMS');
    expectCode(await wire.call('command', { id: nextId(), stream, type: 'task.create', payload: { title: 'x' } }), 'INVALID_PARAMS');
    expect(await readAll(hub)).toEqual(before);
    expect(await hub.store.streams()).not.toContain(stream);
  });

  it('refuses an unknown command type and a bad payload with INVALID_PARAMS', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    const unknown = expectCode(await wire.call('command', { id: nextId(), stream: 'counter/a', type: 'multiply', payload: { by: 2 } }), 'INVALID_PARAMS');
    expect(unknown.data.reason).toBe('unknownCommand');
    const bad = expectCode(await wire.call('command', { id: nextId(), stream: 'counter/a', type: 'add', payload: { by: 'two' } }), 'INVALID_PARAMS');
    expect(bad.data.issues[0].path).toEqual(['by']);
    expectCode(await wire.call('command', { id: nextId(), stream: 'tasks/p1', type: 'task.create', payload: { title: 'x', extra: true } }), 'INVALID_PARAMS');
    expect(await readAll(hub)).toEqual(before);
  });

  it('answers a rejected command with COMMAND_REJECTED and the reason', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    const error = expectCode(await wire.call('command', add('counter/a', -100)), 'COMMAND_REJECTED');
    expect(error.data).toMatchObject({ reason: 'counter.negative', n: 5 });
    const missing = expectCode(
      await wire.call('command', { id: nextId(), stream: 'tasks/p1', type: 'task.delete', payload: { id: 'nope' } }),
      'COMMAND_REJECTED',
    );
    expect(missing.data.reason).toBe('task.notFound');
    expect(await readAll(hub)).toEqual(before);
  });

  it('answers an expectedVersion mismatch with VERSION_CONFLICT and the current version', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    const error = expectCode(await wire.call('command', add('counter/a', 1, { expectedVersion: 0 })), 'VERSION_CONFLICT');
    expect(error.data).toEqual({ currentVersion: 1 });
    expectCode(await wire.call('command', add('counter/a', 1, { expectedVersion: 7 })), 'VERSION_CONFLICT');
    expect(await readAll(hub)).toEqual(before);
    // the right expectedVersion goes through
    expect((await wire.call('command', add('counter/a', 1, { expectedVersion: 1 }))).result).toMatchObject({ version: 2 });
  });

  it('answers a retried command id with the original ack marked duplicate, and a reused id with COMMAND_ID_CONFLICT', async () => {
    const { hub, greeted } = setup();
    const wire = await greeted();
    const original = { id: 'same-id', stream: 'counter/a', type: 'add', payload: { by: 3 } };
    expect((await wire.call('command', original)).result).toEqual({ id: 'same-id', stream: 'counter/a', version: 1 });
    await hub.execute(add('counter/a', 1));
    const before = await readAll(hub);
    // key order does not matter: it is the same payload
    const retry = await wire.call('command', { payload: { by: 3 }, type: 'add', stream: 'counter/a', id: 'same-id' });
    expect(retry.result).toEqual({ id: 'same-id', stream: 'counter/a', version: 1, duplicate: true });
    // from another connection too
    const other = await greeted();
    expect((await other.call('command', original)).result).toEqual({ id: 'same-id', stream: 'counter/a', version: 1, duplicate: true });
    expect(await readAll(hub)).toEqual(before);

    // a duplicate is recognised before expectedVersion is looked at
    expect((await wire.call('command', { ...original, expectedVersion: 0 })).result).toEqual({
      id: 'same-id',
      stream: 'counter/a',
      version: 1,
      duplicate: true,
    });
    const conflict = expectCode(await wire.call('command', { ...original, payload: { by: 4 } }), 'COMMAND_ID_CONFLICT');
    expect(conflict.data).toEqual({ id: 'same-id' });
    expectCode(await wire.call('command', { ...original, stream: 'counter/b' }), 'COMMAND_ID_CONFLICT');
    expectCode(await wire.call('command', { ...original, type: 'noop', payload: {} }), 'COMMAND_ID_CONFLICT');
    expect(await readAll(hub)).toEqual(before);
  });

  it('deduplicates two commands with one id sent back to back (same batch)', async () => {
    const { hub, greeted } = setup();
    const wire = await greeted();
    const command = { id: 'twice', stream: 'counter/a', type: 'add', payload: { by: 1 } };
    const a = wire.sendRequest('command', command);
    const b = wire.sendRequest('command', command);
    const c = wire.sendRequest('command', { ...command, payload: { by: 2 } });
    expect((await wire.response(a)).result).toEqual({ id: 'twice', stream: 'counter/a', version: 1 });
    expect((await wire.response(b)).result).toEqual({ id: 'twice', stream: 'counter/a', version: 1, duplicate: true });
    expectCode(await wire.response(c), 'COMMAND_ID_CONFLICT');
    expect(await hub.read('counter/a')).toEqual({ state: { n: 1 }, version: 1 });
  });

  it('refuses a frame over 1 MiB with PAYLOAD_TOO_LARGE', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted();
    const big = JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'command', params: { ...add('counter/a', 1), pad: 'x'.repeat(1024 * 1024) } });
    wire.sendRaw(big);
    const error = expectCode(await wire.response(null), 'PAYLOAD_TOO_LARGE');
    expect(error.data).toEqual({ limit: 1024 * 1024 });
    await hub.stream('counter/a').settled();
    expect(await readAll(hub)).toEqual(before);
  });

  it('keeps serving the same and other connections after every kind of bad input', async () => {
    const { hub, connect, greeted } = setup();
    const watcher = await greeted();
    expect((await watcher.call('subscribe', { stream: 'counter/a' })).result).toMatchObject({ version: 0 });
    const wire = connect();
    wire.sendRaw('not json');
    wire.sendRaw('[]');
    wire.sendRaw('"x"');
    wire.sendRaw('x'.repeat(1024 * 1024 + 1));
    wire.send({ jsonrpc: '2.0', id: 'm1', method: 'nope' }); // before hello: refused, code aside
    wire.send({ jsonrpc: '2.0', id: 'm2', method: 'command', params: add('counter/a', 1) });
    wire.send({ jsonrpc: '2.0', id: 'm3', method: 'hello', params: { protocol: 9 } });
    wire.send({ jsonrpc: '2.0', method: 'hello', params: { protocol: 1 } }); // a notification: ignored
    wire.send({ jsonrpc: '2.0', id: 'm4', result: {} }); // a response: ignored
    expectCode(await wire.response('m3'), 'UNSUPPORTED_PROTOCOL');
    expectCode(await wire.response('m2'), 'HANDSHAKE_REQUIRED');
    expect((await wire.response('m1')).error).toBeDefined();
    await wire.hello();
    expectCode(await wire.call('command', add('counter/a', -1)), 'COMMAND_REJECTED');
    expectCode(await wire.call('subscribe', { stream: 'x/../y' }), 'INVALID_PARAMS');
    expect((await wire.call('command', add('counter/a', 2))).result).toMatchObject({ version: 1 });
    expect((await wire.call('ping', {})).result).toEqual({ time: hub.clock.now() });
    await until(hub.clock as FakeClock, () => (watcher.events('counter/a').length === 1 ? true : undefined));
    expect(watcher.events('counter/a').map((e) => e.data)).toEqual([{ by: 2 }]);
    const fresh = await greeted();
    expect((await fresh.call('subscribe', { stream: 'counter/a' })).result).toMatchObject({ version: 1, snapshot: { n: 2 } });
    expect(hub.connectionCount).toBe(3);
  });

  it('leaves Object.prototype untouched by __proto__ and constructor keys anywhere in a message', async () => {
    const { hub, greeted } = setup();
    const wire = await greeted({ capabilities: JSON.parse('{"__proto__":{"polluted":"hello"}}') as object });
    const proto = '{"polluted":"yes","toString":"broken"}';
    wire.sendRaw(
      `{"jsonrpc":"2.0","id":"p1","method":"command","__proto__":${proto},"params":{"__proto__":${proto},"id":"p1","stream":"counter/a","type":"add","payload":{"by":1,"__proto__":${proto},"constructor":{"prototype":${proto}}}}}`,
    );
    expect((await wire.response('p1')).result).toEqual({ id: 'p1', stream: 'counter/a', version: 1 });
    wire.sendRaw(`{"jsonrpc":"2.0","id":"p2","method":"subscribe","params":{"stream":"counter/a","__proto__":${proto}}}`);
    expect((await wire.response('p2')).result).toMatchObject({ version: 1 });
    for (const workspaceId of ['__proto__', 'constructor', 'prototype']) {
      expectCode(
        await wire.call('command', { id: nextId(), stream: 'orchestration/default', type: 'workspace.setDesired', payload: { workspaceId, desired: 1 } }),
        'INVALID_PARAMS',
      );
    }
    expectCode(
      await wire.call('command', { id: nextId(), stream: 'tasks/p1', type: 'task.create', payload: { id: '__proto__', title: 'x' } }),
      'INVALID_PARAMS',
    );
    expectCode(
      await wire.call('command', { id: nextId(), stream: 'orchestration/default', type: 'workspace.remove', payload: { workspaceId: 'toString' } }),
      'COMMAND_REJECTED',
    );
    const plain: Record<string, unknown> = {};
    expect(plain['polluted']).toBeUndefined();
    expect(Object.prototype.toString).toBe(Object.prototype.toString);
    expect(typeof ({} as { toString: unknown }).toString).toBe('function');
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(await hub.read('counter/a')).toEqual({ state: { n: 1 }, version: 1 });
    const orchestration = (await hub.read('orchestration/default')).state as OrchestrationState;
    expect(Object.keys(orchestration.workspaces)).toEqual([]);
    expect(Object.getPrototypeOf(orchestration.workspaces)).toBe(Object.prototype);
  });
});

// ---------------------------------------------------------------------------------------------
// Commands and acks
// ---------------------------------------------------------------------------------------------

describe('hub: batches (capabilities.batch)', () => {
  const ping = (id: number) => ({ jsonrpc: '2.0', id, method: 'ping' });
  const command = (id: number, params: unknown) => ({ jsonrpc: '2.0', id, method: 'command', params });

  it('offers batches in its hello answer', async () => {
    const { connect } = setup();
    const answer = await connect().hello();
    expect(answer.result.capabilities).toMatchObject({ batch: true });
  });

  it('handles each message of a batch in order, and answers in batch frames', async () => {
    const { hub, greeted } = setup();
    const wire = await greeted({ capabilities: { batch: true } });
    const framesBefore = wire.frames;
    wire.send([command(101, add('counter/a', 1)), ping(102), command(103, add('counter/a', 2)), command(104, add('counter/a', 3))]);
    const answers = await Promise.all([101, 102, 103, 104].map((id) => wire.response(id)));
    expect(answers.map((answer) => answer.result?.version ?? 'pong')).toEqual([1, 'pong', 2, 3]);
    expect((await hub.read('counter/a')).state).toEqual({ n: 6 });
    // Four answers in fewer frames than messages, at least one of them a batch.
    expect(wire.frames - framesBefore).toBeLessThan(4);
    expect(wire.batches).toBeGreaterThan(0);
  });

  it('answers an invalid message of a batch with its own error; the others are handled', async () => {
    const { hub, greeted } = setup();
    await seed(hub);
    const wire = await greeted({ capabilities: { batch: true } });
    wire.send([
      command(201, add('counter/a', 1)),
      { jsonrpc: '1.0', id: 202, method: 'ping' },
      command(203, { ...add('counter/a', 1), payload: { by: 'x' } }),
      ping(204),
    ]);
    expect((await wire.response(201)).result).toMatchObject({ version: 2 });
    expectCode(await wire.response(202), 'INVALID_REQUEST');
    expectCode(await wire.response(203), 'INVALID_PARAMS');
    expect((await wire.response(204)).result).toHaveProperty('time');
    expect((await hub.read('counter/a')).state).toEqual({ n: 6 });
  });

  it.each([
    ['an empty batch', 0],
    [`a batch of more than ${MAX_BATCH_MESSAGES} messages`, MAX_BATCH_MESSAGES + 1],
  ])('refuses %s whole with INVALID_REQUEST', async (_, size) => {
    const { hub, greeted } = setup();
    await seed(hub);
    const before = await readAll(hub);
    const wire = await greeted({ capabilities: { batch: true } });
    wire.send(Array.from({ length: size }, () => command(301, add('counter/a', 1))));
    expectCode(await wire.response(null), 'INVALID_REQUEST');
    await hub.stream('counter/a').settled();
    expect(await readAll(hub)).toEqual(before);
    expect(wire.received.some((message) => message.id === 301)).toBe(false);
  });

  it('refuses batches from a client that did not ask for them, and never sends it any', async () => {
    const { hub, greeted } = setup();
    const wire = await greeted();
    wire.send([ping(401), ping(402)]);
    expect(expectCode(await wire.response(null), 'INVALID_REQUEST').message).toMatch(/batch capability/);
    for (let i = 0; i < 5; i++) wire.sendRequest('command', add('counter/a', 1), 410 + i);
    await Promise.all([410, 411, 412, 413, 414].map((id) => wire.response(id)));
    expect((await hub.read('counter/a')).state).toEqual({ n: 5 });
    expect(wire.batches).toBe(0);
  });

  it('counts every message of a batch against the rate limit', async () => {
    const { greeted } = setup({ rateLimit: { messagesPerSecond: 1, burst: 4 } });
    const wire = await greeted({ capabilities: { batch: true } });
    // hello took one token: three of these five are answered, two are RATE_LIMITED.
    wire.send([ping(501), ping(502), ping(503), ping(504), ping(505)]);
    const answers = await Promise.all([501, 502, 503, 504, 505].map((id) => wire.response(id)));
    expect(answers.map((answer) => (answer.error ? answer.error.code : 'ok'))).toEqual(['ok', 'ok', 'ok', ErrorCodes.RATE_LIMITED, ErrorCodes.RATE_LIMITED]);
  });
});

describe('hub: commands', () => {
  it(`refuses a payload nested deeper than ${MAX_PAYLOAD_DEPTH} levels with INVALID_PARAMS, and takes one at the limit`, async () => {
    const { hub } = setup();
    // The payload object is level 1; each array inside it one more.
    const nested = (arrays: number): unknown => Array.from({ length: arrays }).reduce<unknown>((inner) => [inner], 'leaf');
    const deep = hub.execute({ ...add('counter/d', 1), payload: { by: 1, extra: nested(MAX_PAYLOAD_DEPTH) } });
    await expect(deep).rejects.toMatchObject({ code: 'INVALID_PARAMS', data: { maxDepth: MAX_PAYLOAD_DEPTH } });
    await expect(hub.execute({ ...add('counter/d', 1), payload: { by: 1, extra: nested(MAX_PAYLOAD_DEPTH - 1) } })).resolves.toMatchObject({ version: 1 });
    // Wide is not deep.
    await expect(hub.execute({ ...add('counter/d', 1), payload: { by: 1, extra: Array.from({ length: 10_000 }, () => [{ a: [1] }]) } })).resolves.toMatchObject(
      { version: 2 },
    );
  });

  it('sends the events notification before the command response on the same connection', async () => {
    const { greeted } = setup();
    const wire = await greeted();
    await wire.call('subscribe', { stream: 'counter/a' });
    for (let i = 1; i <= 3; i++) {
      const id = wire.sendRequest('command', add('counter/a', i));
      await wire.response(id);
      const eventsAt = wire.received.findIndex((m) => m.method === 'events' && m.params.events.some((e: { version: number }) => e.version === i));
      const ackAt = wire.received.findIndex((m) => m.id === id);
      expect(eventsAt).toBeGreaterThanOrEqual(0);
      expect(eventsAt).toBeLessThan(ackAt);
    }
  });

  it('acks with the resulting version, and with the unchanged version when no event was produced', async () => {
    const { hub, greeted } = setup();
    const wire = await greeted({ clientId: 'ide-1' });
    expect((await wire.call('command', add('counter/a', 1))).result).toEqual({ id: expect.any(String), stream: 'counter/a', version: 1 });
    expect((await wire.call('command', add('counter/a', 1))).result).toMatchObject({ version: 2 });
    expect((await wire.call('command', { id: 'nothing', stream: 'counter/a', type: 'noop', payload: {} })).result).toEqual({
      id: 'nothing',
      stream: 'counter/a',
      version: 2,
    });
    const set = { id: nextId(), stream: 'orchestration/default', type: 'workspace.setDesired', payload: { workspaceId: 'w', desired: 3 } };
    expect((await wire.call('command', set)).result).toMatchObject({ version: 1 });
    // the same value again decides no event
    expect((await wire.call('command', { ...set, id: nextId() })).result).toMatchObject({ version: 1 });
    // a task created over the wire gets its id from the command id, twice the same
    const created = await wire.call('command', { id: 'create-1', stream: 'tasks/p1', type: 'task.create', payload: { title: 'a' } });
    expect(created.result).toMatchObject({ version: 1 });
    expect(await hub.read('counter/a')).toEqual({ state: { n: 2 }, version: 2 });
    // a no-op command is remembered too: a retry is a duplicate
    expect((await wire.call('command', { id: 'nothing', stream: 'counter/a', type: 'noop', payload: {} })).result).toMatchObject({
      version: 2,
      duplicate: true,
    });
  });

  it('restores state and version after a restart on the same store, and still deduplicates', async () => {
    const store = new MemoryEventStore();
    const clock = new FakeClock();
    const first = setup({}, store, clock);
    const wire = await first.greeted();
    for (let i = 0; i < 5; i++) await wire.call('command', add('counter/a', 2));
    const before = { id: 'before-restart', stream: 'counter/a', type: 'add', payload: { by: 10 } };
    expect((await wire.call('command', before)).result).toEqual({ id: 'before-restart', stream: 'counter/a', version: 6 });
    await first.hub.close();

    const second = setup({}, store, clock);
    expect(await second.hub.read('counter/a')).toEqual({ state: { n: 20 }, version: 6 });
    const again = second.connect();
    expect((await again.hello()).result.epoch).toBe(store.epoch);
    expect((await again.call('command', before)).result).toEqual({ id: 'before-restart', stream: 'counter/a', version: 6, duplicate: true });
    expect((await again.call('command', add('counter/a', 1))).result).toMatchObject({ version: 7 });
    expect(await second.hub.read('counter/a')).toEqual({ state: { n: 21 }, version: 7 });
  });

  it('announces the store epoch in hello, a different one for a different store', async () => {
    const a = setup();
    const b = setup();
    const helloA = (await a.connect().hello()).result;
    const helloB = (await b.connect().hello()).result;
    expect(helloA).toMatchObject({ protocol: 1, epoch: a.store.epoch, serverId: a.hub.serverId });
    expect(helloB.epoch).toBe(b.store.epoch);
    expect(helloA.epoch).not.toBe(helloB.epoch);
    expect(helloA.domains).toEqual(expect.arrayContaining(['counter', 'orchestration', 'focus', 'tasks']));
  });
});

// ---------------------------------------------------------------------------------------------
// Subscriptions: delta, snapshot, horizon, paged catch-up
// ---------------------------------------------------------------------------------------------

describe('hub: subscribe', () => {
  async function withEvents(count: number, options: Partial<HubOptions> = {}) {
    const s = setup(options);
    for (let i = 0; i < count; i++) await s.hub.execute(add('counter/a', 1));
    return s;
  }

  it('answers without since with a snapshot at the head', async () => {
    const { greeted } = await withEvents(4);
    const wire = await greeted();
    const { result } = await wire.call('subscribe', { stream: 'counter/a' });
    expect(result).toEqual({ stream: 'counter/a', version: 4, head: 4, oldestRetained: 1, snapshot: { n: 4 } });
  });

  it('answers a since within retention with exactly the missing events', async () => {
    const { greeted } = await withEvents(6);
    const wire = await greeted();
    const { result } = await wire.call('subscribe', { stream: 'counter/a', since: 2 });
    expect(result.snapshot).toBeUndefined();
    expect(result).toMatchObject({ stream: 'counter/a', version: 6, head: 6, oldestRetained: 1 });
    expect(result.events.map((e: { version: number }) => e.version)).toEqual([3, 4, 5, 6]);
    expect(result.events[0]).toMatchObject({ type: 'added', data: { by: 1 }, commandId: expect.any(String), time: expect.any(Number) });
  });

  it('answers since 0 on a fresh stream with no events, since = head with an empty list', async () => {
    const { greeted } = await withEvents(3);
    const wire = await greeted();
    expect((await wire.call('subscribe', { stream: 'counter/b', since: 0 })).result).toEqual({
      stream: 'counter/b',
      version: 0,
      head: 0,
      oldestRetained: 1,
      events: [],
    });
    expect((await wire.call('subscribe', { stream: 'counter/a', since: 3 })).result).toEqual({
      stream: 'counter/a',
      version: 3,
      head: 3,
      oldestRetained: 1,
      events: [],
    });
  });

  it('answers a since beyond the head with a snapshot', async () => {
    const { greeted } = await withEvents(3);
    const wire = await greeted();
    const { result } = await wire.call('subscribe', { stream: 'counter/a', since: 10 });
    expect(result).toMatchObject({ version: 3, head: 3, snapshot: { n: 3 } });
    expect(result.events).toBeUndefined();
  });

  it('declares its horizon and answers a since older than retention with a snapshot', async () => {
    const { hub, greeted } = await withEvents(25, { snapshotEvery: 10, retainEvents: 5 });
    const oldest = (await hub.store.info('counter/a')).oldestRetained;
    expect(oldest).toBeGreaterThan(1);
    const wire = await greeted();
    const old = await wire.call('subscribe', { stream: 'counter/a', since: 1 });
    expect(old.result).toMatchObject({ version: 25, head: 25, oldestRetained: oldest, snapshot: { n: 25 } });
    expect(old.result.events).toBeUndefined();
    // right at the horizon: events are still there
    const edge = await wire.call('subscribe', { stream: 'counter/a', since: oldest - 1 });
    expect(edge.result.oldestRetained).toBe(oldest);
    expect(edge.result.events.map((e: { version: number }) => e.version)).toEqual(Array.from({ length: 25 - oldest + 1 }, (_, i) => oldest + i));
    const below = await wire.call('subscribe', { stream: 'counter/a', since: oldest - 2 });
    expect(below.result.snapshot).toEqual({ n: 25 });
  });

  it('pages a large catch-up, then goes live with no gap and no duplicate, even with commands during the catch-up', async () => {
    const { hub, greeted, clock } = await withEvents(1_050, { catchUpPage: 100 });
    const wire = await greeted();
    const writer = await greeted();
    // Every events notification the subscriber gets triggers one more command from another connection.
    let injected = 0;
    wire.link.client.frames.subscribe((frame) => {
      const message = JSON.parse(frame as string) as Msg;
      if (message.method === 'events' && injected < 30) {
        injected++;
        writer.sendRequest('command', add('counter/a', 1));
      }
    });
    const id = wire.sendRequest('subscribe', { stream: 'counter/a', since: 0 });
    // and a few straight away, before the answer
    for (let i = 0; i < 5; i++) writer.sendRequest('command', add('counter/a', 1));
    const answer = (await wire.response(id)).result;
    expect(answer.events).toHaveLength(100);
    expect(answer.version).toBe(100);
    expect(answer.version).toBeLessThan(answer.head);
    expect(answer.head).toBeGreaterThanOrEqual(1_050);

    await until(clock, () => (injected >= 30 && writer.received.length >= 35 + 1 ? true : undefined), 5_000);
    for (let i = 0; i < 5; i++) await writer.call('command', add('counter/a', 1));
    await hub.stream('counter/a').settled();
    const head = (await hub.read('counter/a')).version;
    expect(head).toBe(1_050 + 5 + 30 + 5);
    await until(clock, () => (wire.events('counter/a').at(-1)?.version === head ? true : undefined), 5_000);
    // the answer came before any notification of the stream
    const answerAt = wire.received.findIndex((m) => m.id === id);
    const firstEventsAt = wire.received.findIndex((m) => m.method === 'events');
    expect(answerAt).toBeLessThan(firstEventsAt);
    const versions = [...answer.events, ...wire.events('counter/a')].map((e: { version: number }) => e.version);
    expect(versions).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    expect(wire.received.filter((m) => m.method === 'resync')).toEqual([]);
  });

  it('never sends a subscriber events ahead of its subscribe answer, whatever the interleaving with writers', async () => {
    // For each offset the subscribe request is sent a few microtasks after a command from another
    // connection: the answer and the notifications that follow must fit together without a gap.
    for (let offset = 0; offset < 40; offset++) {
      for (const since of [undefined, 0]) {
        const { hub, greeted, clock } = setup();
        await hub.execute(add('counter/a', 1));
        const wire = await greeted();
        const writer = await greeted();
        writer.sendRequest('command', add('counter/a', 1));
        for (let i = 0; i < offset; i++) await Promise.resolve();
        const id = wire.sendRequest('subscribe', since === undefined ? { stream: 'counter/a' } : { stream: 'counter/a', since });
        const answer = (await wire.response(id)).result;
        await hub.stream('counter/a').settled();
        await clock.flush();
        const answerAt = wire.received.findIndex((m) => m.id === id);
        const before = wire.received.slice(0, answerAt).filter((m) => m.method === 'events');
        const after = wire.received.slice(answerAt + 1).flatMap((m) => (m.method === 'events' ? m.params.events : []));
        const reached = after.length > 0 ? after.at(-1).version : answer.version;
        expect({ offset, since, before, reached }).toEqual({ offset, since, before: [], reached: 2 });
      }
    }
  });

  it('stops sending events after unsubscribe, and an unsubscribe sent right behind a subscribe wins', async () => {
    const { hub, greeted, clock } = setup();
    const wire = await greeted();
    await wire.call('subscribe', { stream: 'counter/a' });
    await hub.execute(add('counter/a', 1));
    await clock.flush();
    expect(wire.events('counter/a')).toHaveLength(1);
    expect((await wire.call('unsubscribe', { stream: 'counter/a' })).result).toEqual({});
    await hub.execute(add('counter/a', 1));
    await clock.flush();
    expect(wire.events('counter/a')).toHaveLength(1);

    // subscribe and unsubscribe pipelined: the subscription must not survive
    const sub = wire.sendRequest('subscribe', { stream: 'counter/b' });
    const unsub = wire.sendRequest('unsubscribe', { stream: 'counter/b' });
    await wire.response(sub);
    await wire.response(unsub);
    await hub.execute(add('counter/b', 1));
    await clock.flush();
    await clock.flush();
    expect(wire.events('counter/b')).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------------

describe('hub: leases', () => {
  const GRACE = 5_000;
  const STREAM = 'orchestration/default';

  async function leaseWorkspace(s: Setup, clientId: string, workspaceId: string, desired: number): Promise<Wire> {
    const wire = await s.greeted({ clientId });
    const answer = await wire.call('command', {
      id: nextId(),
      stream: STREAM,
      type: 'workspace.setDesired',
      payload: { workspaceId, desired, lease: true },
    });
    expect(answer.error).toBeUndefined();
    return wire;
  }

  async function orchestration(hub: Hub) {
    const { state, version } = await hub.read(STREAM);
    return { state: state as OrchestrationState, version };
  }

  it('removes the workspace of a client gone longer than the grace period, with an ordinary event', async () => {
    const s = setup({ leaseGraceMs: GRACE });
    const watcher = await s.greeted({ clientId: 'dashboard' });
    await watcher.call('subscribe', { stream: STREAM });
    const ide1 = await leaseWorkspace(s, 'ide-1', 'ws-1', 3);
    await leaseWorkspace(s, 'ide-2', 'ws-2', 2);
    expect((await orchestration(s.hub)).state.totals).toEqual({ running: 0, desired: 5 });
    expect((await orchestration(s.hub)).state.workspaces['ws-1']?.leasedTo).toBe('ide-1');

    ide1.close();
    await s.clock.advance(GRACE - 1);
    expect((await orchestration(s.hub)).state.workspaces['ws-1']).toBeDefined();
    await s.clock.advance(1);
    await s.hub.stream(STREAM).settled();
    const after = await orchestration(s.hub);
    expect(after.state.workspaces['ws-1']).toBeUndefined();
    expect(after.state.workspaces['ws-2']).toBeDefined();
    expect(after.state.totals).toEqual({ running: 0, desired: 2 });
    expect(after.version).toBe(3);
    await s.clock.flush();
    expect(watcher.events(STREAM).at(-1)).toMatchObject({
      version: 3,
      type: 'workspace.removed',
      data: { workspaceId: 'ws-1', reason: 'leaseExpired' },
    });
  });

  it('removes nothing when the same client id reconnects within the grace period', async () => {
    const s = setup({ leaseGraceMs: GRACE });
    const ide = await leaseWorkspace(s, 'ide-1', 'ws-1', 3);
    ide.close();
    await s.clock.advance(GRACE / 2);
    const back = await s.greeted({ clientId: 'ide-1' });
    await s.clock.advance(GRACE * 10);
    const state = await orchestration(s.hub);
    expect(state.state.workspaces['ws-1']).toMatchObject({ desired: 3, leasedTo: 'ide-1' });
    expect(state.version).toBe(1);
    // gone again, for good this time
    back.close();
    await s.clock.advance(GRACE);
    await s.hub.stream(STREAM).settled();
    expect((await orchestration(s.hub)).state.workspaces['ws-1']).toBeUndefined();
  });

  it('counts each connection of a client id: the lease expires only when the last one is gone', async () => {
    const s = setup({ leaseGraceMs: GRACE });
    const a = await leaseWorkspace(s, 'ide-1', 'ws-1', 1);
    const b = await s.greeted({ clientId: 'ide-1' });
    a.close();
    await s.clock.advance(GRACE * 2);
    expect((await orchestration(s.hub)).state.workspaces['ws-1']).toBeDefined();
    b.close();
    await s.clock.advance(GRACE);
    await s.hub.stream(STREAM).settled();
    expect((await orchestration(s.hub)).state.workspaces['ws-1']).toBeUndefined();
  });

  it('expires the lease of a client that sent two hellos back to back and then closed', async () => {
    const s = setup({ leaseGraceMs: GRACE });
    const wire = s.connect();
    const first = wire.sendRequest('hello', { protocol: 1, clientId: 'ide-1' });
    wire.sendRequest('hello', { protocol: 1, clientId: 'ide-1' });
    await wire.response(first);
    await wire.call('command', { id: nextId(), stream: STREAM, type: 'workspace.setDesired', payload: { workspaceId: 'ws-1', desired: 1, lease: true } });
    wire.close();
    await s.clock.advance(GRACE);
    await s.hub.stream(STREAM).settled();
    expect((await orchestration(s.hub)).state.workspaces['ws-1']).toBeUndefined();
  });

  it('expires after a restart the lease of a holder that never comes back, even if nobody reads the stream', async () => {
    const store = new MemoryEventStore();
    const clock = new FakeClock();
    const first = setup({ leaseGraceMs: GRACE }, store, clock);
    const ide = await leaseWorkspace(first, 'ide-1', 'ws-1', 4);
    ide.close();
    await first.hub.close();

    const second = setup({ leaseGraceMs: GRACE }, store, clock);
    await clock.advance(GRACE * 3);
    // the first look at the stream, long after the holder left: no ghost entry
    const after = await orchestration(second.hub);
    expect(after.state.workspaces).toEqual({});
    expect(after.state.totals).toEqual({ running: 0, desired: 0 });
  });

  it('still expires the lease of an absent holder after a hub restart', async () => {
    const store = new MemoryEventStore();
    const clock = new FakeClock();
    const first = setup({ leaseGraceMs: GRACE }, store, clock);
    await leaseWorkspace(first, 'ide-1', 'ws-1', 4);
    await leaseWorkspace(first, 'ide-2', 'ws-2', 1);
    await first.hub.close();

    const second = setup({ leaseGraceMs: GRACE }, store, clock);
    // ide-2 comes back to the new hub; ide-1 never does
    await second.greeted({ clientId: 'ide-2' });
    const watcher = await second.greeted({ clientId: 'dashboard' });
    expect((await watcher.call('subscribe', { stream: STREAM })).result.snapshot.totals).toEqual({ running: 0, desired: 5 });
    await clock.advance(GRACE);
    await second.hub.stream(STREAM).settled();
    const after = await orchestration(second.hub);
    expect(after.state.workspaces['ws-1']).toBeUndefined();
    expect(after.state.workspaces['ws-2']).toMatchObject({ leasedTo: 'ide-2' });
    expect(after.state.totals).toEqual({ running: 0, desired: 1 });
    const removed = (await store.read(STREAM, 1, 100)).filter((e) => e.type === 'workspace.removed');
    expect(removed).toHaveLength(1);
    expect(removed[0]?.data).toEqual({ workspaceId: 'ws-1', reason: 'leaseExpired' });
  });
});

describe('hub: idle streams', () => {
  const IDLE = 60_000;

  it('unloads a stream nobody used for the idle period, and loads it again from the store when asked', async () => {
    const s = setup({ unloadIdleStreamsMs: IDLE });
    await s.hub.execute(add('counter/a', 5));
    await s.hub.execute(add('counter/a', 2));
    const first = s.hub.stream('counter/a');
    await s.clock.advance(IDLE * 2);
    const second = s.hub.stream('counter/a');
    expect(second).not.toBe(first);
    expect(await s.hub.read('counter/a')).toEqual({ state: first.state, version: 2 });
    expect(await s.hub.execute(add('counter/a', 1))).toMatchObject({ version: 3 });
  });

  it('keeps a stream that has a subscriber, however long it is quiet, and unloads it once the subscriber left', async () => {
    const s = setup({ unloadIdleStreamsMs: IDLE });
    const wire = await s.greeted();
    await wire.call('subscribe', { stream: 'counter/a' });
    const host = s.hub.stream('counter/a');
    await s.clock.advance(IDLE * 5);
    expect(s.hub.stream('counter/a')).toBe(host);
    await wire.call('unsubscribe', { stream: 'counter/a' });
    await s.clock.advance(IDLE * 2);
    expect(s.hub.holds(host)).toBe(false);
  });

  it('keeps a stream that was used within the idle period', async () => {
    const s = setup({ unloadIdleStreamsMs: IDLE });
    await s.hub.execute(add('counter/a', 1));
    const host = s.hub.stream('counter/a');
    for (let i = 0; i < 6; i++) {
      await s.clock.advance(IDLE / 2);
      await s.hub.execute(add('counter/a', 1));
    }
    expect(s.hub.holds(host)).toBe(true);
  });

  it('keeps a stream whose state holds leases (their expiry needs it)', async () => {
    const s = setup({ unloadIdleStreamsMs: IDLE, leaseGraceMs: IDLE * 100 });
    const ide = await s.greeted({ clientId: 'ide-1' });
    await ide.call('command', {
      id: nextId(),
      stream: 'orchestration/default',
      type: 'workspace.setDesired',
      payload: { workspaceId: 'w', desired: 1, lease: true },
    });
    const host = s.hub.stream('orchestration/default');
    await s.clock.advance(IDLE * 3);
    expect(s.hub.holds(host)).toBe(true);
  });

  it('keeps every stream with unloadIdleStreamsMs: false', async () => {
    const s = setup({ unloadIdleStreamsMs: false });
    await s.hub.execute(add('counter/a', 1));
    const host = s.hub.stream('counter/a');
    await s.clock.advance(HUB_DEFAULTS.unloadIdleStreamsMs * 3);
    expect(s.hub.holds(host)).toBe(true);
  });
});

describe('hub: leases with several hubs on one store', () => {
  const GRACE = 5_000;
  const STREAM = 'orchestration/default';

  /** Two hubs on one store and one clock, as two processes on one database. */
  function twoHubs() {
    const store = new MemoryEventStore();
    const clock = new FakeClock();
    return {
      store,
      clock,
      a: setup({ leaseGraceMs: GRACE, serverId: 'hub-a' }, store, clock),
      b: setup({ leaseGraceMs: GRACE, serverId: 'hub-b' }, store, clock),
    };
  }

  async function lease(s: Setup, clientId: string): Promise<Wire> {
    const wire = await s.greeted({ clientId });
    const answer = await wire.call('command', {
      id: nextId(),
      stream: STREAM,
      type: 'workspace.setDesired',
      payload: { workspaceId: 'ws-1', desired: 2, lease: true },
    });
    expect(answer.error).toBeUndefined();
    return wire;
  }

  async function workspace(s: Setup) {
    await s.hub.stream(STREAM).settled();
    return ((await s.hub.read(STREAM)).state as OrchestrationState).workspaces['ws-1'];
  }

  it('keeps the lease of a holder connected to another hub, and expires it once the holder is gone everywhere', async () => {
    const { clock, a, b } = twoHubs();
    const ide = await lease(a, 'ide-1');
    // Hub b holds the stream too (a dashboard reads it there), and sees a holder it has no connection of.
    const dashboard = await b.greeted({ clientId: 'dashboard' });
    await dashboard.call('subscribe', { stream: STREAM });
    await clock.advance(GRACE * 4);
    expect(await workspace(b)).toMatchObject({ desired: 2, leasedTo: 'ide-1' });
    expect(await workspace(a)).toMatchObject({ desired: 2, leasedTo: 'ide-1' });

    ide.close();
    await clock.advance(GRACE * 2);
    expect(await workspace(a)).toBeUndefined();
    expect(await workspace(b)).toBeUndefined();
  });

  it('keeps the lease of a holder that moved to another hub within the grace period', async () => {
    const { store, clock, a, b } = twoHubs();
    const ide = await lease(a, 'ide-1');
    ide.close();
    await clock.advance(GRACE / 2);
    await b.greeted({ clientId: 'ide-1' });
    await clock.advance(GRACE * 4);
    expect(await workspace(a)).toMatchObject({ leasedTo: 'ide-1' });
    expect((await store.read(STREAM, 1, 100)).map((event) => event.type)).toEqual(['workspace.desiredSet']);
  });

  it('expires the leases of the holders of a hub that stopped heartbeating (a crashed process)', async () => {
    const { store, clock, a, b } = twoHubs();
    await lease(a, 'ide-1');
    await b.greeted({ clientId: 'dashboard' }).then((wire) => wire.call('subscribe', { stream: STREAM }));
    await clock.advance(GRACE * 2);
    expect(await workspace(b)).toMatchObject({ leasedTo: 'ide-1' });
    // Hub a's process freezes: no more heartbeats, its connections never close.
    const heartbeat = store.presence.heartbeat.bind(store.presence);
    store.presence.heartbeat = (hubId, now) => (hubId === 'hub-a' ? Promise.resolve() : heartbeat(hubId, now));
    await clock.advance(GRACE * 3);
    expect(await workspace(b)).toBeUndefined();
  });

  it('withdraws the holders of a hub that shuts down at once', async () => {
    const { store, clock, a } = twoHubs();
    await lease(a, 'ide-1');
    await clock.advance(1);
    expect(await store.presence.isPresentElsewhere('hub-b', 'ide-1', GRACE, clock.now())).toBe(true);
    await a.hub.close();
    expect(await store.presence.isPresentElsewhere('hub-b', 'ide-1', GRACE, clock.now())).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Auth hooks
// ---------------------------------------------------------------------------------------------

describe('hub: authenticate and authorize', () => {
  function authSetup() {
    const calls: Array<{ identity: unknown; stream: string; action: string }> = [];
    const s = setup({
      authenticate: ({ token }) => (token === 'good' ? { id: 'alice', role: 'reader' } : token === 'writer' ? { id: 'bob' } : undefined),
      authorize: (identity, stream, action) => {
        calls.push({ identity, stream, action });
        if (stream === 'counter/secret') return false;
        return action === 'read' || identity?.id === 'bob';
      },
    });
    return { ...s, calls };
  }

  it('refuses a bad or missing token with UNAUTHORIZED and stays unauthenticated', async () => {
    const { connect } = authSetup();
    const wire = connect();
    expectCode(await wire.call('hello', { protocol: 1, token: 'bad' }), 'UNAUTHORIZED');
    expectCode(await wire.call('hello', { protocol: 1 }), 'UNAUTHORIZED');
    expectCode(await wire.call('subscribe', { stream: 'counter/a' }), 'HANDSHAKE_REQUIRED');
    await wire.hello({ token: 'good' });
  });

  it('answers a refused read with FORBIDDEN on subscribe and a refused write with FORBIDDEN on command', async () => {
    const { hub, greeted, calls } = authSetup();
    await seed(hub);
    const before = await readAll(hub);
    const reader = await greeted({ token: 'good' });
    const forbidden = expectCode(await reader.call('subscribe', { stream: 'counter/secret' }), 'FORBIDDEN');
    expect(forbidden.data).toEqual({ stream: 'counter/secret', action: 'read' });
    expect((await reader.call('subscribe', { stream: 'counter/a' })).result).toMatchObject({ version: 1 });
    expectCode(await reader.call('command', add('counter/a', 1)), 'FORBIDDEN');
    expect(await readAll(hub)).toEqual(before);
    expect(calls).toContainEqual({ identity: { id: 'alice', role: 'reader' }, stream: 'counter/a', action: 'read' });
    expect(calls).toContainEqual({ identity: { id: 'alice', role: 'reader' }, stream: 'counter/a', action: 'write' });

    const writer = await greeted({ token: 'writer' });
    expect((await writer.call('command', add('counter/a', 1))).result).toMatchObject({ version: 2 });
    expect(calls).toContainEqual({ identity: { id: 'bob' }, stream: 'counter/a', action: 'write' });
  });
});

import { Buffer } from 'node:buffer';
import { ErrorCodes, createRandom } from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { describe, expect, it } from 'vitest';
import { TRANSPORT_KINDS, bystanders, expectUnharmed, startWorld, type Peer, type StdioAttackPeer, type TransportKind, type WsPeer } from './world.js';

/**
 * Hostile frames over every transport: each is answered with its documented error (or the
 * connection is closed as documented), the hub keeps serving the other clients, no target stream
 * changes, and Object.prototype stays as it was.
 */

const msgpack = (value: unknown) => msgpackCodec.encode(value) as Uint8Array;
const concat = (...parts: Array<Uint8Array | number[]>) => Buffer.concat(parts.map((part) => Buffer.from(part as Uint8Array)));

/** A frame in the peer's codec: JSON text, or MessagePack bytes. */
function encoded(peer: Peer, message: unknown): string | Uint8Array {
  return peer.kind === 'ws-msgpack' ? msgpack(message) : JSON.stringify(message);
}

/** JSON text with a value nested `depth` levels deep as the payload of a command. */
function deepCommand(depth: number): string {
  return `{"jsonrpc":"2.0","id":"deep","method":"command","params":{"id":"deep-1","stream":"counter/x","type":"add","payload":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
}

/** A msgpack map of the four members of a request, with `params` given as raw bytes. */
function msgpackRequest(id: string, method: string, params: Uint8Array | number[]): Uint8Array {
  return concat([0x84], msgpack('jsonrpc'), msgpack('2.0'), msgpack('id'), msgpack(id), msgpack('method'), msgpack(method), msgpack('params'), params);
}

interface AnsweredCase {
  name: string;
  kinds: readonly TransportKind[];
  send(peer: Peer): void;
  code: number;
  /** The id of the error response (null when the frame could not be read). */
  id: string | number | null;
  /** False when the attacker's own connection is of no further use afterwards (documented). */
  attackerServedAfter?: boolean;
}

const everywhere = TRANSPORT_KINDS;
const textual: readonly TransportKind[] = ['ws-json', 'stdio'];

const answered: AnsweredCase[] = [
  // Invalid UTF-8
  {
    name: 'invalid UTF-8 bytes in a binary frame',
    kinds: ['ws-json'],
    send: (p) => p.sendFrame(Uint8Array.of(0x7b, 0xff, 0xfe, 0x7d)),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
  },
  {
    name: 'invalid UTF-8 in a message body',
    kinds: ['stdio'],
    send: (p) => p.sendFrame(Uint8Array.of(0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d)),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
  },
  {
    name: 'a string of invalid UTF-8 inside a msgpack request',
    kinds: ['ws-msgpack'],
    send: (p) => p.sendFrame(msgpackRequest('u', 'ping', concat([0x81], msgpack('s'), [0xa3, 0xed, 0xa0, 0x80]))),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
  },
  // MessagePack length bombs: containers and strings claiming gigabytes.
  ...(
    [
      ['an array claiming 4 billion items', [0xdd, 0xff, 0xff, 0xff, 0xff]],
      ['a map claiming 4 billion entries', [0xdf, 0xff, 0xff, 0xff, 0xff]],
      ['a string claiming 4 GB', [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]],
      ['nested arrays each claiming 65,535 items', Array.from({ length: 60 }, () => [0xdc, 0xff, 0xff]).flat()],
    ] as const
  ).map(([what, bomb]): AnsweredCase => ({
    name: `msgpack length bomb: ${what}`,
    kinds: ['ws-msgpack'],
    send: (p) => p.sendFrame(msgpackRequest('bomb', 'subscribe', [...bomb])),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
  })),
  // Deep nesting
  {
    name: 'a megabyte of nested arrays',
    kinds: textual,
    send: (p) => p.sendFrame('['.repeat(400_000) + ']'.repeat(400_000)),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
  },
  { name: 'a command payload nested 100,000 deep', kinds: textual, send: (p) => p.sendFrame(deepCommand(100_000)), code: ErrorCodes.PARSE_ERROR, id: null },
  {
    name: 'a msgpack payload nested 100 deep',
    kinds: ['ws-msgpack'],
    send: (p) =>
      p.sendFrame(
        msgpackRequest(
          'deep',
          'ping',
          concat(
            Array.from({ length: 100 }, () => 0x91),
            [0x01],
          ),
        ),
      ),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
  },
  {
    name: 'a payload nested just within the codec limit, past what a command may hold',
    kinds: everywhere,
    send: (p) => {
      let payload: unknown = 1;
      for (let i = 0; i < 62; i++) payload = [payload];
      p.sendFrame(encoded(p, { jsonrpc: '2.0', id: 'deep', method: 'command', params: { id: 'deep-2', stream: 'counter/x', type: 'add', payload } }));
    },
    code: ErrorCodes.INVALID_PARAMS,
    id: 'deep',
  },
  // Prototype pollution attempts: never read through, never written through.
  {
    name: 'a command whose payload hides its fields under __proto__',
    kinds: textual,
    send: (p) =>
      p.sendFrame(
        '{"jsonrpc":"2.0","id":"p1","method":"command","params":{"id":"proto-1","stream":"counter/x","type":"add","payload":{"__proto__":{"by":5,"polluted":true}}}}',
      ),
    code: ErrorCodes.INVALID_PARAMS,
    id: 'p1',
  },
  {
    name: 'subscribe params under constructor.prototype',
    kinds: everywhere,
    send: (p) =>
      p.sendFrame(
        encoded(p, { jsonrpc: '2.0', id: 'p2', method: 'subscribe', params: { constructor: { prototype: { stream: 'counter/x', polluted: true } } } }),
      ),
    code: ErrorCodes.INVALID_PARAMS,
    id: 'p2',
  },
  {
    name: 'an entity id named constructor',
    kinds: everywhere,
    send: (p) =>
      p.sendFrame(
        encoded(p, {
          jsonrpc: '2.0',
          id: 'p3',
          method: 'command',
          params: { id: 'proto-3', stream: 'orchestration/default', type: 'workspace.setDesired', payload: { workspaceId: 'constructor', desired: 2 } },
        }),
      ),
    code: ErrorCodes.INVALID_PARAMS,
    id: 'p3',
  },
  {
    name: 'a __proto__ key in msgpack',
    kinds: ['ws-msgpack'],
    send: (p) => p.sendFrame(msgpackRequest('p4', 'ping', concat([0x81], msgpack('__proto__'), msgpack({ polluted: true })))),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
  },
  // Type confusion and huge numbers
  {
    name: 'an id of 1e400 (Infinity once parsed)',
    kinds: textual,
    send: (p) => p.sendFrame('{"jsonrpc":"2.0","id":1e400,"method":"ping"}'),
    code: ErrorCodes.INVALID_REQUEST,
    id: null,
  },
  {
    name: 'an id past 2^64 in msgpack',
    kinds: ['ws-msgpack'],
    send: (p) =>
      p.sendFrame(
        concat(
          [0x83],
          msgpack('jsonrpc'),
          msgpack('2.0'),
          msgpack('id'),
          [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
          msgpack('method'),
          msgpack('ping'),
        ),
      ),
    code: ErrorCodes.INVALID_REQUEST,
    id: null,
  },
  {
    name: 'subscribe with since 1e308',
    kinds: everywhere,
    send: (p) => p.sendFrame(encoded(p, { jsonrpc: '2.0', id: 'n1', method: 'subscribe', params: { stream: 'counter/x', since: 1e308 } })),
    code: ErrorCodes.INVALID_PARAMS,
    id: 'n1',
  },
  {
    name: 'a method that is an array',
    kinds: everywhere,
    send: (p) => p.sendFrame(encoded(p, { jsonrpc: '2.0', id: 't1', method: ['ping'] })),
    code: ErrorCodes.INVALID_REQUEST,
    id: 't1',
  },
  {
    name: 'params that are a string',
    kinds: everywhere,
    send: (p) => p.sendFrame(encoded(p, { jsonrpc: '2.0', id: 't2', method: 'subscribe', params: 'counter/x' })),
    code: ErrorCodes.INVALID_PARAMS,
    id: 't2',
  },
  {
    name: 'a command whose payload is a boolean',
    kinds: everywhere,
    send: (p) =>
      p.sendFrame(encoded(p, { jsonrpc: '2.0', id: 't3', method: 'command', params: { id: 'tc-1', stream: 'counter/x', type: 'add', payload: true } })),
    code: ErrorCodes.INVALID_PARAMS,
    id: 't3',
  },
  // Oversized messages over stdio are skipped as they arrive (WebSocket closes: see below).
  {
    name: 'a 2 MiB message',
    kinds: ['stdio'],
    send: (p) => p.sendFrame(JSON.stringify({ jsonrpc: '2.0', id: 'big', method: 'ping', params: { pad: 'x'.repeat(2 * 1024 * 1024) } })),
    code: ErrorCodes.PAYLOAD_TOO_LARGE,
    id: null,
  },
  {
    name: 'a header announcing a petabyte (the rest of the stream is skipped: the connection is of no further use)',
    kinds: ['stdio'],
    send: (p) => (p as StdioAttackPeer).writeRaw('Content-Length: 999999999999999\r\n\r\n{"jsonrpc":"2.0","id":1,"method":"ping"}'),
    code: ErrorCodes.PAYLOAD_TOO_LARGE,
    id: null,
    attackerServedAfter: false,
  },
  {
    name: 'a header section that never ends',
    kinds: ['stdio'],
    send: (p) => (p as StdioAttackPeer).writeRaw(`X-Pad: ${'a'.repeat(20_000)}`),
    code: ErrorCodes.PARSE_ERROR,
    id: null,
    attackerServedAfter: false,
  },
];

describe.each(TRANSPORT_KINDS)('hostile frames over %s', (kind) => {
  const cases = answered.filter((attack) => attack.kinds.includes(kind));
  it.each(cases.map((attack) => [attack.name, attack] as const))('%s: answered, others served, nothing changed', async (_name, attack) => {
    const world = await startWorld();
    const others = await bystanders(world);
    const attacker = await world.connect(kind, { clientId: 'attacker' });
    const before = await world.targets();

    attack.send(attacker);
    const { response, before: notifications } = await attacker.response(attack.id);
    expect(notifications).toEqual([]);
    expect(response.error.code).toBe(attack.code);
    expect(response.error.message).toEqual(expect.any(String));
    if (attack.attackerServedAfter !== false) expect((await attacker.call('ping', {})).result).toEqual({ time: expect.any(Number) });
    await expectUnharmed(world, before, others);
  });

  it('1,000 frames of random bytes: each answered or stepped over, then the attacker is served again', async () => {
    const world = await startWorld({ hub: { rateLimit: false } });
    const others = await bystanders(world);
    const attacker = await world.connect(kind, { clientId: 'attacker' });
    const before = await world.targets();
    const random = createRandom(0xbad);
    const frames = Array.from({ length: 1_000 }, () => Uint8Array.from({ length: 1 + random.int(200) }, () => random.int(256)));
    for (const frame of frames) {
      if (kind === 'stdio') (attacker as StdioAttackPeer).writeRaw(frame);
      else attacker.sendFrame(kind === 'ws-json' && random.chance(0.5) ? Buffer.from(frame).toString('latin1') : frame);
    }
    // Every answer is an error with id null (nothing could be read), or — over stdio, where the
    // noise is one byte stream — one parse error for the whole episode of lost framing.
    const id = attacker.request('ping', {});
    const { response, before: errors } = await attacker.response(id);
    expect(response.result).toEqual({ time: expect.any(Number) });
    if (kind === 'stdio') expect(errors.length).toBeGreaterThanOrEqual(1);
    else expect(errors).toHaveLength(frames.length);
    for (const error of errors) {
      expect(error.id).toBeNull();
      expect([ErrorCodes.PARSE_ERROR, ErrorCodes.INVALID_REQUEST]).toContain(error.error.code);
    }
    await expectUnharmed(world, before, others);
  });

  it('a hello whose capabilities carry __proto__ and constructor keys is served and pollutes nothing', async () => {
    const world = await startWorld();
    const others = await bystanders(world);
    const attacker = await world.connect(kind);
    const before = await world.targets();
    const capabilities =
      kind === 'ws-msgpack'
        ? { constructor: { prototype: { polluted: true } } }
        : JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}');
    const hello = await attacker.call('hello', { protocol: 1, clientId: 'attacker', capabilities });
    expect(hello.result).toMatchObject({ protocol: 1 });
    expect((await attacker.call('subscribe', { stream: 'counter/x' })).result).toMatchObject({ stream: 'counter/x' });
    await expectUnharmed(world, before, others);
  });
});

describe('hostile WebSocket frames the socket itself refuses', () => {
  async function attack(kind: 'ws-json' | 'ws-msgpack', send: (attacker: WsPeer) => void, code: number) {
    const world = await startWorld();
    const others = await bystanders(world);
    const attacker = await world.connect(kind, { clientId: 'attacker' });
    const before = await world.targets();
    send(attacker);
    expect((await attacker.closed).code).toBe(code);
    await expect.poll(() => world.hub.connectionCount).toBe(2);
    await expectUnharmed(world, before, others);
  }

  it('a text frame of invalid UTF-8 closes the socket with 1007', () =>
    attack('ws-json', (attacker) => attacker.socket.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false }), 1007));

  it('a msgpack frame over maxPayload closes the socket with 1009', () =>
    attack('ws-msgpack', (attacker) => attacker.sendFrame(new Uint8Array(2 * 1024 * 1024)), 1009));

  it('a flood of 20,000 fragments of one message closes the socket with 1008', () =>
    attack(
      'ws-json',
      (attacker) => {
        for (let i = 0; i < 20_000; i++) attacker.socket.send(' ', { fin: false, binary: false });
      },
      1008,
    ));

  it('fragments adding up to more than maxPayload close the socket with 1009', () =>
    attack(
      'ws-json',
      (attacker) => {
        const chunk = ' '.repeat(64 * 1024);
        for (let i = 0; i < 20; i++) attacker.socket.send(chunk, { fin: false, binary: false });
      },
      1009,
    ));
});

describe('hostile stdio byte streams', () => {
  it('a message dribbled one byte per write, and one left unfinished: others are served meanwhile', async () => {
    const world = await startWorld();
    const others = await bystanders(world);
    const attacker = await world.connect('stdio', { clientId: 'attacker' });
    const before = await world.targets();
    const frame = Buffer.from('Content-Length: 52\r\n\r\n{"jsonrpc":"2.0","id":1,"method":"ping","params":{}}', 'latin1');
    for (const byte of frame) {
      attacker.writeRaw(Uint8Array.of(byte));
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect((await attacker.response(1)).response.result).toEqual({ time: expect.any(Number) });
    // Half a message, then nothing: the hub holds that half and serves everyone else.
    attacker.writeRaw('Content-Length: 100000\r\n\r\n{"jsonrpc":"2.0","id":2,');
    await others.served();
    await expectUnharmed(world, before, others);
  });
});

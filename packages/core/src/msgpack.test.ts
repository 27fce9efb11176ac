import { encode as libraryEncode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import type { Codec, Frame } from './codec.js';
import { LockstepError, type ErrorCode } from './errors.js';
import { DEFAULT_MAX_DEPTH, createMsgpackCodec, msgpackCodec } from './msgpack.js';
import { createRandom, type Random } from './random.js';

const bytes = (hex: string): Uint8Array => Uint8Array.from(hex.replace(/\s+/g, '').match(/../g) ?? [], (h) => parseInt(h, 16));
const text = (s: string): string => [...new TextEncoder().encode(s)].map((b) => b.toString(16).padStart(2, '0')).join('');
/** A msgpack fixstr header plus UTF-8 bytes, as hex. */
const fixstr = (s: string): string => (0xa0 + new TextEncoder().encode(s).length).toString(16) + text(s);

function decodeError(frame: Frame, codec: Codec = msgpackCodec): LockstepError {
  let thrown: unknown;
  try {
    codec.decode(frame);
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'decode should have thrown').toBeInstanceOf(LockstepError);
  return thrown as LockstepError;
}

function expectRefused(frame: Frame, code: ErrorCode = 'PARSE_ERROR', codec: Codec = msgpackCodec): void {
  expect(decodeError(frame, codec).code).toBe(code);
}

const messages: unknown[] = [
  { jsonrpc: '2.0', id: 1, method: 'hello', params: { protocol: 1, clientId: 'cli_7f3a', capabilities: { codec: 'msgpack' } } },
  { jsonrpc: '2.0', id: 2, method: 'subscribe', params: { stream: 'tasks/proj_1', since: 41 } },
  {
    jsonrpc: '2.0',
    id: 2,
    result: {
      stream: 'tasks/proj_1',
      version: 43,
      head: 43,
      oldestRetained: 1,
      events: [
        { version: 42, type: 'task.added', data: { taskId: 't_9', title: 'Ship it ✅ — déjà vu 🚀' }, time: 1_717_171_717_171, commandId: 'cmd_1' },
        { version: 43, type: 'task.renamed', data: { taskId: 't_9', title: 'x'.repeat(300) }, time: 1_717_171_717_172 },
      ],
    },
  },
  {
    jsonrpc: '2.0',
    id: 3,
    method: 'command',
    params: { id: 'cmd_2', stream: 'tasks/proj_1', type: 'task.add', payload: { title: 'a', tags: [], done: false, n: -1.5e-7 }, expectedVersion: 43 },
  },
  { jsonrpc: '2.0', id: 3, result: { id: 'cmd_2', stream: 'tasks/proj_1', version: 44, duplicate: true } },
  { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'frame is not valid msgpack' } },
  { jsonrpc: '2.0', method: 'resync', params: { stream: 'tasks/proj_1', reason: 'slowConsumer' } },
  {
    jsonrpc: '2.0',
    id: 'req-9',
    result: {
      ints: [
        0,
        127,
        128,
        255,
        256,
        65_535,
        65_536,
        2 ** 32 - 1,
        2 ** 32,
        Number.MAX_SAFE_INTEGER,
        -1,
        -32,
        -33,
        -128,
        -129,
        -32_768,
        -32_769,
        -(2 ** 31),
        -(2 ** 31) - 1,
        Number.MIN_SAFE_INTEGER,
      ],
      floats: [0.1, -2.5, 1e300, 5e-324, 2 ** 53 + 2],
      nested: { a: { b: { c: [[[null]]] } } },
      empty: { o: {}, a: [], s: '' },
      keys: { constructor: 1, toString: 'x', hasOwnProperty: null, 'with space': true, '': 0, 'émoji 🔑': 1 },
      long: {
        s: 'é'.repeat(40_000),
        a: Array.from({ length: 70_000 }, (_, i) => i % 3),
        o: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
      },
    },
  },
];

describe('msgpack codec', () => {
  it('is the binary codec named msgpack', () => {
    expect(msgpackCodec.name).toBe('msgpack');
    expect(msgpackCodec.binary).toBe(true);
  });

  it.each(messages.map((message, index) => [index, message] as const))('round-trips message %i as JSON would', (_, message) => {
    const frame = msgpackCodec.encode(message);
    expect(frame).toBeInstanceOf(Uint8Array);
    expect(msgpackCodec.decode(frame)).toStrictEqual(JSON.parse(JSON.stringify(message)));
  });

  it('omits undefined object members like JSON and encodes undefined array items as null', () => {
    const message = { jsonrpc: '2.0', id: 1, result: { a: undefined, b: 1, list: [undefined, 2] } };
    const decoded = msgpackCodec.decode(msgpackCodec.encode(message));
    expect(decoded).toStrictEqual(JSON.parse(JSON.stringify(message)));
    expect(Object.hasOwn((decoded as { result: object }).result, 'a')).toBe(false);
  });

  it('decodes frames that are views into a larger buffer (Node Buffers, WebSocket chunks)', () => {
    const frame = msgpackCodec.encode({ jsonrpc: '2.0', method: 'ping', id: 7 }) as Uint8Array;
    const padded = new Uint8Array(frame.length + 10);
    padded.set(frame, 5);
    expect(msgpackCodec.decode(padded.subarray(5, 5 + frame.length))).toStrictEqual({ jsonrpc: '2.0', method: 'ping', id: 7 });
  });

  it('keeps working after refusing a frame (the decoder instance is reused)', () => {
    expectRefused(bytes('dc ff ff 01'));
    expectRefused(bytes('92 01'));
    expect(msgpackCodec.decode(bytes('92 01 02'))).toStrictEqual([1, 2]);
  });

  describe('refuses what is not a msgpack frame', () => {
    it('a string frame: msgpack frames are binary', () => {
      expectRefused('{"jsonrpc":"2.0","method":"ping"}');
      expectRefused('');
    });

    it('anything that is not a Uint8Array', () => {
      expectRefused(new ArrayBuffer(1) as unknown as Frame);
      expectRefused(null as unknown as Frame);
    });

    it('an empty frame', () => expectRefused(new Uint8Array(0)));
  });

  describe('frame size', () => {
    it('refuses a frame over maxFrameBytes with PAYLOAD_TOO_LARGE before looking inside', () => {
      const codec = createMsgpackCodec({ maxFrameBytes: 16 });
      const error = decodeError(new Uint8Array(17).fill(0xc1), codec);
      expect(error.code).toBe('PAYLOAD_TOO_LARGE');
      expect(error.data).toStrictEqual({ limit: 16 });
      expect(codec.decode(codec.encode('x'.repeat(14)))).toBe('x'.repeat(14));
    });

    it('defaults to 1 MiB', () => {
      const frame = new Uint8Array(1024 * 1024 + 1);
      expect(decodeError(frame).code).toBe('PAYLOAD_TOO_LARGE');
      const fits = msgpackCodec.encode('a'.repeat(1024 * 1024 - 5));
      expect(fits.length).toBe(1024 * 1024);
      expect((msgpackCodec.decode(fits) as string).length).toBe(1024 * 1024 - 5);
    });

    it('refuses nonsensical limits', () => {
      expect(() => createMsgpackCodec({ maxFrameBytes: 0 })).toThrow(RangeError);
      expect(() => createMsgpackCodec({ maxDepth: -1 })).toThrow(RangeError);
    });
  });

  describe('length bombs are refused before anything big is allocated', () => {
    it.each([
      ['array 32 of 2^32-1 entries in 10 bytes', 'dd ffffffff 00 00 00 00 00'],
      ['map 32 of 2^32-1 entries in 10 bytes', 'df ffffffff 00 00 00 00 00'],
      ['array 16 of 65535 entries', 'dc ffff 01 02 03'],
      ['map 16 of 65535 entries', 'de ffff a1 61 01'],
      ['map whose entries need twice its count in bytes', '84 a1 61 01 a1 62 02'],
      ['array 32 inside a map', '81 a1 61 dd ffffffff c0'],
      ['str 32 of 2^32-1 bytes', 'db ffffffff 61 62 63'],
      ['str 16 longer than the frame', 'da 0100 61 62 63'],
      ['str 8 longer than the frame', 'd9 20 61 62 63'],
      ['fixstr longer than the frame', 'a5 61 62'],
      ['a string leaving no byte for the rest of its array', '92 a3 61 62 63'],
      ['bin 32 of 2^32-1 bytes', 'c6 ffffffff 00'],
      ['ext 32 of 2^32-1 bytes', 'c9 ffffffff 01 00'],
    ])('%s', (_, hex) => expectRefused(bytes(hex)));

    it('nested containers that each claim everything left of the frame', () => {
      // Every header claims as many elements as there are bytes after it, which passes a per-container
      // check; all of them together claim ~40 times the frame, which the pending-bytes check refuses.
      const frame = new Uint8Array(4096);
      let pos = 0;
      for (let level = 0; level < 40; level++) {
        frame[pos] = 0xdc;
        const claim = frame.length - pos - 3;
        frame[pos + 1] = claim >> 8;
        frame[pos + 2] = claim & 0xff;
        pos += 3;
      }
      expectRefused(frame);
    });

    it('a huge claim nested deep inside an otherwise valid message', () => {
      const frame = msgpackCodec.encode({ jsonrpc: '2.0', id: 1, result: { events: [{ data: [1, 2, 3] }] } }) as Uint8Array;
      const at = frame.indexOf(0x93); // the fixarray [1, 2, 3]
      const bomb = new Uint8Array([...frame.subarray(0, at), 0xdd, 0xff, 0xff, 0xff, 0xff, ...frame.subarray(at + 1)]);
      expectRefused(bomb);
    });
  });

  describe('malformed frames', () => {
    it('every truncation of a valid frame', () => {
      for (const message of messages.slice(0, 7)) {
        const frame = msgpackCodec.encode(message) as Uint8Array;
        for (let length = 0; length < frame.length; length++) {
          expect(decodeError(frame.subarray(0, length)).code, `truncated to ${length} of ${frame.length} bytes`).toBe('PARSE_ERROR');
        }
      }
    });

    it('trailing bytes after the message', () => {
      const frame = msgpackCodec.encode({ jsonrpc: '2.0', method: 'ping' }) as Uint8Array;
      expectRefused(new Uint8Array([...frame, 0xc0]));
      expectRefused(new Uint8Array([...frame, ...frame]));
      expectRefused(bytes('01 02'));
    });

    it('the never-used type byte 0xc1', () => {
      expectRefused(bytes('c1'));
      expectRefused(bytes('91 c1'));
    });

    it.each([
      ['timestamp (fixext 8, type -1)', libraryEncode(new Date(0))],
      ['fixext 1', bytes('d4 01 00')],
      ['ext 8', bytes('c7 02 05 00 00')],
      ['ext inside a message', bytes(`81 ${fixstr('at')} d6 ff 00000000`)],
    ])('extension types: %s', (_, frame) => expectRefused(frame));

    it('binary values, which JSON cannot hold', () => {
      expectRefused(bytes('c4 00'));
      expectRefused(bytes('c4 02 01 02'));
      expectRefused(libraryEncode({ data: new Uint8Array([1, 2]) }));
    });

    it.each([
      ['an integer key', '81 01 02'],
      ['a nil key', '81 c0 02'],
      ['a boolean key', '81 c3 02'],
      ['a float key', '81 cb 3ff0000000000000 02'],
      ['an array key', '81 91 01 02'],
      ['an empty map key', '81 80 02'],
      ['a non-string second key', `82 ${fixstr('a')} 01 02 03`],
    ])('map keys that are not strings: %s', (_, hex) => expectRefused(bytes(hex)));

    it.each([
      ['float 64 NaN', 'cb 7ff8000000000000'],
      ['float 64 +Infinity', 'cb 7ff0000000000000'],
      ['float 64 -Infinity', 'cb fff0000000000000'],
      ['float 32 NaN', 'ca 7fc00000'],
      ['float 32 -Infinity', 'ca ff800000'],
    ])('numbers JSON cannot hold: %s', (_, hex) => expectRefused(bytes(hex)));

    it('accepts finite floats of both widths', () => {
      expect(msgpackCodec.decode(bytes('ca 3fc00000'))).toBe(1.5);
      expect(msgpackCodec.decode(bytes('cb 7fefffffffffffff'))).toBe(Number.MAX_VALUE);
      expect(msgpackCodec.decode(bytes('cf 0000000100000000'))).toBe(2 ** 32);
      expect(msgpackCodec.decode(bytes('d3 ffffffffffffffff'))).toBe(-1);
    });

    it.each([
      ['a lone continuation byte', 'a1 80'],
      ['an overlong encoding of "/"', 'a2 c0af'],
      ['an overlong three-byte sequence', 'a3 e08080'],
      ['an encoded surrogate', 'a3 eda080'],
      ['a code point past U+10FFFF', 'a4 f4908080'],
      ['a truncated sequence at the end of the string', 'a2 61e2'],
      ['a truncated sequence before the next value', '92 a2 61e2 01'],
      ['0xff', 'a1 ff'],
      ['an invalid key', `81 a1 ff 01`],
    ])('strings that are not UTF-8: %s', (_, hex) => expectRefused(bytes(hex)));

    it('decodes valid UTF-8 of every width, in short and long strings', () => {
      const value = { ['ключ']: 'a é € 🚀 中文', long: '€🚀'.repeat(200) };
      expect(msgpackCodec.decode(msgpackCodec.encode(value))).toStrictEqual(value);
    });
  });

  describe('nesting depth', () => {
    const nested = (depth: number): unknown => {
      let value: unknown = 1;
      for (let i = 0; i < depth; i++) value = [value];
      return value;
    };

    it(`accepts ${DEFAULT_MAX_DEPTH} levels and refuses ${DEFAULT_MAX_DEPTH + 1}`, () => {
      expect(msgpackCodec.decode(msgpackCodec.encode(nested(DEFAULT_MAX_DEPTH)))).toStrictEqual(nested(DEFAULT_MAX_DEPTH));
      expectRefused(libraryEncode(nested(DEFAULT_MAX_DEPTH + 1)));
    });

    it('counts maps and arrays alike, and not empty containers', () => {
      let value: unknown = {};
      for (let i = 0; i < DEFAULT_MAX_DEPTH; i++) value = i % 2 ? [value] : { k: value };
      expect(msgpackCodec.decode(msgpackCodec.encode(value))).toStrictEqual(value);
      expectRefused(libraryEncode({ k: value }));
    });

    it('refuses to encode what it would refuse to decode', () => {
      expect(() => msgpackCodec.encode(nested(DEFAULT_MAX_DEPTH + 1))).toThrow();
    });

    it('follows maxDepth', () => {
      const codec = createMsgpackCodec({ maxDepth: 3 });
      expect(codec.decode(codec.encode(nested(3)))).toStrictEqual(nested(3));
      expectRefused(libraryEncode(nested(4)), 'PARSE_ERROR', codec);
    });

    it('refuses 100,000 nested array headers', () => {
      expectRefused(new Uint8Array(100_000).fill(0x91));
      expectRefused(new Uint8Array([...new Uint8Array(100_000).fill(0x91), 0x01]));
    });
  });

  describe('prototype pollution', () => {
    const polluted = () => (({}) as Record<string, unknown>).polluted;

    it.each([
      ['a top-level __proto__ key', `81 ${fixstr('__proto__')} 81 ${fixstr('polluted')} c3`],
      ['a __proto__ key encoded as str 8', `81 d9 09 ${text('__proto__')} 81 ${fixstr('polluted')} c3`],
      ['a nested __proto__ key', `81 ${fixstr('params')} 82 ${fixstr('a')} 01 ${fixstr('__proto__')} 81 ${fixstr('polluted')} c3`],
    ])('refuses %s and leaves Object.prototype alone', (_, hex) => {
      expectRefused(bytes(hex));
      expect(polluted()).toBeUndefined();
      expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
    });

    it('refuses a __proto__ key even when JSON.parse made it an own property', () => {
      const value = JSON.parse('{"__proto__":{"polluted":true}}') as unknown;
      expectRefused(msgpackCodec.encode(value));
      expect(polluted()).toBeUndefined();
    });

    it('decodes constructor and prototype keys as plain own properties', () => {
      const frame = bytes(`81 ${fixstr('constructor')} 81 ${fixstr('prototype')} 81 ${fixstr('polluted')} c3`);
      const decoded = msgpackCodec.decode(frame) as Record<string, unknown>;
      expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
      expect(Object.hasOwn(decoded, 'constructor')).toBe(true);
      expect(JSON.stringify(decoded)).toBe('{"constructor":{"prototype":{"polluted":true}}}');
      expect(polluted()).toBeUndefined();
      expect(Object.prototype.constructor).toBe(Object);
    });
  });

  describe('random and mutated frames', () => {
    const seed = Number(process.env.LOCKSTEP_SEED ?? 0x6d7067);
    const valid = messages.slice(0, 7).map((message) => msgpackCodec.encode(message) as Uint8Array);

    const mutate = (random: Random, frame: Uint8Array): Uint8Array => {
      const out = [...frame];
      for (let edits = 1 + random.int(3); edits > 0; edits--) {
        const at = random.int(out.length + 1);
        switch (random.int(6)) {
          case 0:
            out[at] = random.int(256);
            break;
          case 1:
            out.splice(at, 0, random.int(256));
            break;
          case 2:
            out.splice(at, 1 + random.int(4));
            break;
          case 3:
            out.length = at;
            break;
          case 4:
            out[at] = random.pick([0xc1, 0xc4, 0xc7, 0xca, 0xcb, 0xd4, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xff, 0x00, 0x7f, 0x80, 0x9f, 0xbf]);
            break;
          default:
            out.splice(at, 0, ...out.slice(random.int(out.length), random.int(out.length)));
        }
      }
      return Uint8Array.from(out, (b) => b & 0xff);
    };

    it('never throw anything but a LockstepError, and what decodes is JSON', () => {
      const random = createRandom(seed);
      let decoded = 0;
      for (let round = 0; round < 6000; round++) {
        const frame = round % 2 === 0 ? Uint8Array.from({ length: random.int(48) }, () => random.int(256)) : mutate(random, random.pick(valid));
        let value: unknown;
        try {
          value = msgpackCodec.decode(frame);
        } catch (error) {
          const ok = error instanceof LockstepError && error.code === 'PARSE_ERROR';
          expect(ok, `seed ${seed}, round ${round}: ${String(error)}`).toBe(true);
          continue;
        }
        decoded++;
        expect(value, `seed ${seed}, round ${round}`).toStrictEqual(JSON.parse(JSON.stringify(value)));
        expect(msgpackCodec.decode(msgpackCodec.encode(value)), `seed ${seed}, round ${round}`).toStrictEqual(value);
      }
      expect(decoded, `seed ${seed}: some frames should decode`).toBeGreaterThan(0);
      expect(polluted()).toBeUndefined();
    });

    const polluted = () => (({}) as Record<string, unknown>).polluted;
  });
});

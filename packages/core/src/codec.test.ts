import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_JSON_DEPTH, createJsonCodec, jsonCodec, type Codec, type Frame } from './codec.js';
import { LockstepError } from './errors.js';
import { createMsgpackCodec, msgpackCodec } from './msgpack.js';
import { createRandom } from './random.js';

function decodeError(codec: Codec, frame: Frame): LockstepError {
  let thrown: unknown;
  try {
    codec.decode(frame);
  } catch (error) {
    thrown = error;
  }
  expect(thrown, 'decode should have thrown').toBeInstanceOf(LockstepError);
  return thrown as LockstepError;
}

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

const message = {
  jsonrpc: '2.0',
  id: 4,
  method: 'command',
  params: { id: 'cmd_1', stream: 'tasks/proj_1', type: 'task.add', payload: { title: 'déjà vu 🚀', tags: ['a'], n: 1.5, done: false, note: null } },
};

describe('json codec', () => {
  it('is the text codec named json', () => {
    expect(jsonCodec.name).toBe('json');
    expect(jsonCodec.binary).toBe(false);
    expect(typeof jsonCodec.encode(message)).toBe('string');
  });

  it('decodes text frames and UTF-8 byte frames alike', () => {
    const text = jsonCodec.encode(message) as string;
    expect(jsonCodec.decode(text)).toStrictEqual(message);
    expect(jsonCodec.decode(utf8(text))).toStrictEqual(message);
  });

  it.each([
    ['a lone continuation byte', [0x22, 0x80, 0x22]],
    ['0xff', [0x7b, 0xff, 0x7d]],
    ['an overlong "/"', [0x22, 0xc0, 0xaf, 0x22]],
    ['an encoded surrogate', [0x22, 0xed, 0xa0, 0x80, 0x22]],
    ['a truncated sequence', [0x22, 0xe2, 0x82]],
  ])('refuses bytes that are not UTF-8 (%s) with PARSE_ERROR', (_, frame) => {
    expect(decodeError(jsonCodec, Uint8Array.from(frame)).code).toBe('PARSE_ERROR');
  });

  it('refuses a frame over maxFrameBytes with PAYLOAD_TOO_LARGE', () => {
    const codec = createJsonCodec({ maxFrameBytes: 10 });
    for (const frame of ['"123456789"x', utf8('"123456789"x')]) {
      const error = decodeError(codec, frame);
      expect(error.code).toBe('PAYLOAD_TOO_LARGE');
      expect(error.data).toStrictEqual({ limit: 10 });
    }
    expect(codec.decode('"12345678"')).toBe('12345678');
    expect(decodeError(jsonCodec, ' '.repeat(DEFAULT_MAX_FRAME_BYTES + 1)).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it.each([
    ['empty', ''],
    ['truncated', '{"jsonrpc":"2.0","id":1'],
    ['trailing garbage', '{"a":1} x'],
    ['two messages', '{"a":1}{"a":2}'],
    ['single quotes', "{'a':1}"],
    ['a trailing comma', '[1,]'],
    ['NaN', 'NaN'],
    ['undefined', 'undefined'],
    ['a comment', '{} // hi'],
  ])('refuses invalid JSON (%s) with PARSE_ERROR', (_, frame) => {
    expect(decodeError(jsonCodec, frame).code).toBe('PARSE_ERROR');
  });

  it('answers deeply nested JSON with a value or PARSE_ERROR, never a crash', () => {
    const depth = 100_000;
    expect(decodeError(jsonCodec, '['.repeat(depth)).code).toBe('PARSE_ERROR');
    for (const frame of ['['.repeat(depth) + ']'.repeat(depth), '{"a":'.repeat(depth) + '1' + '}'.repeat(depth)]) {
      try {
        expect(jsonCodec.decode(frame)).toBeTypeOf('object');
      } catch (error) {
        expect(error).toBeInstanceOf(LockstepError);
        expect((error as LockstepError).code).toBe('PARSE_ERROR');
      }
    }
  });

  it('refuses nesting deeper than maxDepth (default 64) before parsing, counting no bracket inside a string', () => {
    const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
    expect(jsonCodec.decode(nested(DEFAULT_MAX_JSON_DEPTH))).toBeInstanceOf(Array);
    expect(decodeError(jsonCodec, nested(DEFAULT_MAX_JSON_DEPTH + 1)).code).toBe('PARSE_ERROR');
    expect(decodeError(jsonCodec, '{"a":'.repeat(65) + '1' + '}'.repeat(65)).message).toContain('deeper than 64 levels');
    // A megabyte of openers is refused at the 65th, long before JSON.parse would have built anything.
    expect(decodeError(jsonCodec, '['.repeat(1_000_000)).message).toContain('deeper than 64 levels');
    // Brackets in strings, escaped quotes and backslashes are text, not nesting.
    const text = JSON.stringify({ s: '[[[[{{{{'.repeat(100), q: 'say \\"[[[\\" and \\\\', t: '\\' });
    expect(jsonCodec.decode(text)).toEqual(JSON.parse(text));
    const small = createJsonCodec({ maxDepth: 2 });
    expect(small.decode('{"a":[1]}')).toEqual({ a: [1] });
    expect(decodeError(small, '{"a":[[1]]}').code).toBe('PARSE_ERROR');
    expect(() => createJsonCodec({ maxDepth: 0 })).toThrow(RangeError);
  });

  it('keeps a __proto__ key as an own property without touching Object.prototype', () => {
    const decoded = jsonCodec.decode('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.hasOwn(decoded, '__proto__')).toBe(true);
    expect(Object.getPrototypeOf(decoded)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

// The contract every codec keeps, whatever its format.
describe.each([
  ['json', jsonCodec, createJsonCodec({ maxFrameBytes: 64 })],
  ['msgpack', msgpackCodec, createMsgpackCodec({ maxFrameBytes: 64 })],
])('codec contract: %s', (_, codec, small) => {
  it('round-trips protocol messages', () => {
    expect(codec.decode(codec.encode(message))).toStrictEqual(message);
  });

  it('produces frames of its declared kind', () => {
    expect(typeof codec.encode(message) === 'string').toBe(!codec.binary);
  });

  it('omits undefined members', () => {
    expect(codec.decode(codec.encode({ a: 1, b: undefined }))).toStrictEqual({ a: 1 });
  });

  it('refuses frames over its limit with PAYLOAD_TOO_LARGE', () => {
    const frame = small.encode({ text: 'x'.repeat(100) });
    expect(decodeError(small, frame).code).toBe('PAYLOAD_TOO_LARGE');
  });

  it('throws nothing but LockstepError on random bytes', () => {
    const seed = 0xc0dec;
    const random = createRandom(seed);
    for (let round = 0; round < 2000; round++) {
      const frame = Uint8Array.from({ length: random.int(40) }, () => (random.chance(0.5) ? random.int(128) : random.int(256)));
      try {
        codec.decode(frame);
      } catch (error) {
        const ok = error instanceof LockstepError && error.code === 'PARSE_ERROR';
        expect(ok, `seed ${seed}, round ${round}: ${String(error)}`).toBe(true);
      }
    }
  });
});

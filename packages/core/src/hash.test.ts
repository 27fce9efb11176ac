import { describe, expect, it } from 'vitest';
import { canonicalJson, fingerprint, toBase36 } from './hash.js';
import { createRandom, type Random } from './random.js';

/** The definition of the canonical text, written the plain way: what `canonicalJson` must always give. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${Array.from({ length: value.length }, (_, i) => (i in value ? reference(value[i]) : '')).join(',')}]`;
  const record = value as Record<string, unknown>;
  const members = Object.keys(record)
    .sort()
    .filter((key) => record[key] !== undefined)
    .map((key) => `${JSON.stringify(key)}:${reference(record[key])}`);
  return `{${members.join(',')}}`;
}

const KEYS = ['a', 'b', 'B', 'id', 'title', '9', '10', 'é', 'zz', 'a"b', '', '__proto__'];
class Point {
  constructor(
    readonly x: number,
    readonly y: number,
  ) {}
}

function value(random: Random, depth = 0): unknown {
  switch (random.int(depth > 3 ? 9 : 13)) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.pick([0, -0, 1.5, -7, 2 ** 53, 1e21, 1e-7]);
    case 3:
      return random.pick(['', 'x', 'quote " and \\ backslash', 'line\nbreak', '\u2028', 'é', '\ud800']);
    case 4:
      return undefined;
    case 5:
      return random.pick([() => 1, Symbol('s'), new Date(0), new Point(1, 2)]);
    case 6:
      return Object.assign(Object.create(null) as object, { b: 1, a: 2 });
    case 7:
    case 8:
      return random.pick(['text', 3, true]);
    case 9:
    case 10: {
      const record: Record<string, unknown> = {};
      const keys = KEYS.filter(() => random.chance(0.4));
      if (random.chance(0.6)) keys.sort();
      for (const key of keys) Object.defineProperty(record, key, { value: value(random, depth + 1), enumerable: true, writable: true, configurable: true });
      return record;
    }
    default: {
      const array = Array.from({ length: random.int(4) }, () => value(random, depth + 1));
      // A hole, on purpose.
      if (array.length > 1 && random.chance(0.2)) delete array[random.int(array.length)];
      return array;
    }
  }
}

describe('canonicalJson', () => {
  const seed = Number(process.env['LOCKSTEP_SEED'] ?? 4242);
  it(`gives the reference text for 20,000 random values (seed ${seed})`, () => {
    const random = createRandom(seed);
    for (let i = 0; i < 20_000; i++) {
      const input = value(random);
      expect(canonicalJson(input), `seed ${seed}, value ${i}`).toBe(reference(input));
    }
  });

  it('sorts keys, drops undefined members, leaves holes empty', () => {
    expect(canonicalJson({ b: 1, a: [1, , undefined], c: undefined })).toBe('{"a":[1,,null],"b":1}');
    expect(canonicalJson({ '10': 1, '9': 2 })).toBe('{"10":1,"9":2}');
  });

  it('keeps the fingerprints stored in existing logs', () => {
    // Computed by the releases before the fast path; a change here means stored command records no longer match.
    expect(fingerprint(['tasks/proj_1', 'task.create', { id: 'task_1', title: 'Write the wire guide' }])).toBe('2ea51xn4m5i');
    expect(fingerprint(['tasks/proj_1', 'task.create', { title: 'Write the wire guide', id: 'task_1' }])).toBe('2ea51xn4m5i');
    expect(fingerprint(['counter/x', 'add', { by: 3, note: ['a', null, { z: 1, y: [true] }] }])).toBe('1t25shsb9wc');
  });
});

describe('toBase36', () => {
  it('writes what toString(36) writes, for every safe non-negative integer tried', () => {
    const random = createRandom(36);
    const values = [0, 1, 35, 36, 37, 1295, 1296, 36 ** 6 - 1, 36 ** 6, 2 ** 32, 2 ** 53 - 1];
    for (let i = 0; i < 100_000; i++) values.push(Math.floor(random.next() * 2 ** 53), random.int(100_000));
    for (const value of values) expect(toBase36(value), String(value)).toBe(value.toString(36));
  });
});

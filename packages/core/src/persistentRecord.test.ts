import { inspect } from 'node:util';
import { encode, decode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { createRandom, type Random } from './random.js';
import { isPersistentRecord, recordDataOf, recordFacade, toPlainRecord, toPlainState } from './persistentRecord.js';
import { recordDelete, recordFromObject, recordGet, recordKeys, recordSet, recordValues, type RecordData } from './recordTrie.js';

/** A key from a small alphabet of shapes: names, array indices, and names that look like indices. */
function randomKey(random: Random, spread: number): string {
  const n = random.int(spread);
  switch (random.int(5)) {
    case 0:
      return String(n); // an array index: listed first, in numeric order
    case 1:
      return `0${n}`; // not canonical: an ordinary key
    case 2:
      return `${n}.5`;
    default:
      return `key_${n}`;
  }
}

/** Every observable way of reading the facade agrees with the plain object. */
function expectSame(facade: Record<string, unknown>, model: Record<string, unknown>, seed: number): void {
  const context = `seed ${seed}`;
  expect(Object.keys(facade), context).toEqual(Object.keys(model));
  expect(Object.values(facade), context).toEqual(Object.values(model));
  expect(Object.entries(facade), context).toEqual(Object.entries(model));
  expect(JSON.stringify(facade), context).toBe(JSON.stringify(model));
  expect({ ...facade }, context).toEqual(model);
  expect(facade, context).toEqual(model);
  const forIn: string[] = [];
  for (const key in facade) forIn.push(key);
  expect(forIn, context).toEqual(Object.keys(model));
  for (const key of Object.keys(model)) {
    expect(key in facade, context).toBe(true);
    expect(Object.hasOwn(facade, key), context).toBe(true);
    expect(facade[key], context).toBe(model[key]);
  }
}

describe('persistent records', () => {
  for (const seed of [1, 2, 3, 20261208]) {
    it(`agrees with a plain object over random sets and deletes, every version kept intact (seed ${seed})`, () => {
      const random = createRandom(seed);
      const model: Record<string, unknown> = {};
      let data: RecordData = recordFromObject({});
      const versions: Array<{ data: RecordData; plain: string }> = [];
      const spread = random.pick([20, 200, 3_000]);
      // Stretches of transient edits (nodes made under one edit change in place, as in a draft),
      // others of plain path copying. A version is kept only where a stretch ends: what a draft
      // hands out when it finishes.
      let edit: object | null = null;
      for (let step = 0; step < 4_000; step++) {
        const key = randomKey(random, spread);
        if (random.chance(0.3)) {
          delete model[key];
          data = recordDelete(data, key, edit);
        } else {
          const value = random.chance(0.1) ? model[key] : { n: step };
          model[key] = value;
          data = recordSet(data, key, value, edit);
        }
        expect(data.size, `seed ${seed}, step ${step}`).toBe(Object.keys(model).length);
        if (step % 250 === 0) {
          versions.push({ data, plain: JSON.stringify(model) });
          expectSame(recordFacade(data), model, seed);
          edit = random.chance(0.5) ? {} : null;
        }
      }
      expectSame(recordFacade(data), model, seed);
      // Older versions are untouched by everything after them.
      for (const version of versions) expect(JSON.stringify(recordFacade(version.data)), `seed ${seed}`).toBe(version.plain);
    });
  }

  it('keeps entries whose 32-bit hashes collide apart', () => {
    // Colliding keys exist among a few hundred thousand (a 32-bit hash): found by trying.
    const seen = new Map<number, string>();
    const pairs: Array<[string, string]> = [];
    const empty = recordFromObject({});
    for (let i = 0; pairs.length < 3 && i < 400_000; i++) {
      const key = `${(Math.imul(i, 2654435761) >>> 0).toString(36)}.${i}`;
      const hash = hashOf(recordSet(empty, key, i, null), key);
      const other = seen.get(hash);
      if (other !== undefined) pairs.push([other, key]);
      else seen.set(hash, key);
    }
    expect(pairs.length).toBeGreaterThan(0);
    for (const [a, b] of pairs) {
      let record = recordFromObject({ x: 0 });
      record = recordSet(record, a, 'a', null);
      record = recordSet(record, b, 'b', null);
      expect(recordGet(record, a)?.value).toBe('a');
      expect(recordGet(record, b)?.value).toBe('b');
      record = recordSet(record, b, 'b2', null);
      expect(recordKeys(record)).toEqual(['x', a, b]);
      const without = recordDelete(record, a, null);
      expect(recordGet(without, a)).toBeUndefined();
      expect(recordGet(without, b)?.value).toBe('b2');
      expect(recordGet(record, a)?.value).toBe('a');
      // Built in one pass, the same.
      const built = recordFromObject({ x: 0, [a]: 'a', [b]: 'b' });
      expect(toPlainRecord(recordFacade(built))).toEqual({ x: 0, [a]: 'a', [b]: 'b' });
    }
  });

  it('passes for a plain object where applications and tools look', () => {
    const plain = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`t${i}`, { id: `t${i}`, n: i }]));
    const facade = recordFacade(recordFromObject(plain));
    expect(isPersistentRecord(facade)).toBe(true);
    expect(isPersistentRecord(plain)).toBe(false);
    expect(Object.getPrototypeOf(facade)).toBe(Object.prototype);
    expect(Object.prototype.toString.call(facade)).toBe('[object Object]');
    expect(facade).toStrictEqual(plain);
    expect(decode(encode(facade))).toEqual(plain);
    expect(JSON.parse(JSON.stringify({ facade }))).toEqual({ facade: plain });
    expect(recordValues(recordDataOf(facade)!)).toEqual(Object.values(plain));
    expect(inspect(facade, { depth: 0 })).toBe(inspect(plain, { depth: 0 }));
    // Inherited members read as on a plain object; own keys win.
    expect(facade['constructor']).toBe(Object);
    expect('toString' in facade).toBe(true);
    expect(Object.hasOwn(facade, 'toString')).toBe(false);
    // Changed in place like a plain object (path copying behind the same facade).
    facade['t1000'] = { id: 't1000', n: 1000 };
    delete facade['t0'];
    expect(Object.keys(facade).at(-1)).toBe('t1000');
    expect('t0' in facade).toBe(false);
    expect(() => Object.freeze(facade)).toThrow(TypeError);
    expect(() => structuredClone(facade)).toThrow();
    expect(structuredClone(toPlainRecord(facade))).toEqual(toPlainRecord(facade));
    // Deep, and sharing what holds no record.
    const small = { n: 1 };
    const state = { list: [{ facade }], small };
    const plainState = toPlainState(state);
    expect(structuredClone(plainState)).toEqual(state);
    expect(isPersistentRecord(plainState.list[0]!.facade)).toBe(false);
    expect(plainState.small).toBe(small);
    expect(toPlainState({ small })).toEqual({ small });
  });
});

/** The 32-bit hash the trie keeps on each entry. */
function hashOf(data: RecordData, key: string): number {
  return (recordGet(data, key) as unknown as { hash: number }).hash;
}

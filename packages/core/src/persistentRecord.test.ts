import { inspect } from 'node:util';
import { encode, decode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { createRandom, type Random } from './random.js';
import { isPersistentRecord, recordDataOf, recordFacade, toPlainRecord, toPlainState } from './persistentRecord.js';
import { ABSENT, recordDelete, recordFromObject, recordGet, recordKeys, recordSet, recordValues, type RecordData } from './recordVersions.js';

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
      for (let step = 0; step < 4_000; step++) {
        const key = randomKey(random, spread);
        if (random.chance(0.3)) {
          delete model[key];
          data = recordDelete(data, key);
        } else {
          const value = random.chance(0.1) ? model[key] : { n: step };
          model[key] = value;
          data = recordSet(data, key, value);
        }
        expect(data.size, `seed ${seed}, step ${step}`).toBe(Object.keys(model).length);
        if (step % 250 === 0) {
          versions.push({ data, plain: JSON.stringify(model) });
          expectSame(recordFacade(data), model, seed);
        }
      }
      expectSame(recordFacade(data), model, seed);
      // Older versions are untouched by everything after them.
      for (const version of versions) expect(JSON.stringify(recordFacade(version.data)), `seed ${seed}`).toBe(version.plain);
    });
  }

  for (const seed of [4, 5, 6, 20261207]) {
    it(`keeps every version of a tree of versions apart, read in any order (seed ${seed})`, () => {
      // Versions branch from any earlier one (a client's confirmed and optimistic states, a hub's
      // batch given up), and old ones are read between changes: every read walks the shared map to
      // the version read, or gives it a map of its own when walks grow long.
      const random = createRandom(seed);
      const spread = random.pick([10, 100, 1_000]);
      const start: Record<string, unknown> = {};
      for (let i = 0; i < random.int(spread); i++) start[randomKey(random, spread)] = { start: i };
      const versions: Array<{ data: RecordData; model: Record<string, unknown> }> = [{ data: recordFromObject(start), model: { ...start } }];
      for (let step = 0; step < 3_000; step++) {
        // Mostly from recent versions (as live states are), sometimes from any.
        const from = random.chance(0.8) ? versions[versions.length - 1 - random.int(Math.min(versions.length, 4))]! : random.pick(versions);
        const key = randomKey(random, spread);
        const model = { ...from.model };
        let data: RecordData;
        if (random.chance(0.3)) {
          delete model[key];
          data = recordDelete(from.data, key);
        } else {
          model[key] = { step };
          data = recordSet(from.data, key, model[key]);
        }
        versions.push({ data, model });
        // Reads of an older version between changes.
        const read = random.pick(versions);
        const probe = randomKey(random, spread);
        expect(recordGet(read.data, probe), `seed ${seed}, step ${step}`).toBe(Object.hasOwn(read.model, probe) ? read.model[probe] : ABSENT);
        if (step % 30 === 0) expect(recordKeys(read.data), `seed ${seed}, step ${step}`).toEqual(Object.keys(read.model));
      }
      for (const index of versions.map(() => random.int(versions.length))) {
        const version = versions[index]!;
        expect(version.data.size, `seed ${seed}`).toBe(Object.keys(version.model).length);
        expect(JSON.stringify(recordFacade(version.data)), `seed ${seed}`).toBe(JSON.stringify(version.model));
      }
      for (const version of versions.slice(-50)) expectSame(recordFacade(version.data), version.model, seed);
    });
  }

  it('lists a key deleted, set again, then undone in its first place', () => {
    const base = recordFromObject(Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, i])));
    const without = recordDelete(base, 'k1');
    const again = recordSet(without, 'k1', 'again');
    expect(recordKeys(again)).toEqual(['k0', 'k2', 'k3', 'k4', 'k1']);
    // Reading the older versions walks the map back past both changes.
    expect(recordKeys(without)).toEqual(['k0', 'k2', 'k3', 'k4']);
    expect(recordKeys(base)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4']);
    expect(recordValues(base)).toEqual([0, 1, 2, 3, 4]);
    // And forward again.
    expect(recordValues(again)).toEqual([0, 2, 3, 4, 'again']);
    const more = recordSet(base, 'k5', 5);
    expect(recordKeys(more)).toEqual(['k0', 'k1', 'k2', 'k3', 'k4', 'k5']);
    expect(recordGet(again, 'k5')).toBe(ABSENT);
  });

  it('keeps every branch in order once a deleted key set again makes the family number its places', () => {
    // Until a deleted key is set again, the map's own order is every version's order; versions made
    // before that (another branch among them) still list right after it.
    const base = recordFromObject(Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`k${i}`, i])));
    const replaced = recordSet(base, 'k2', 'two');
    const deleted = recordDelete(replaced, 'k3');
    const branch = recordSet(base, 'x', 'x');
    const again = recordSet(deleted, 'k3', 'three');
    const further = recordSet(branch, 'y', 'y');
    const reads: Array<[RecordData, string[], unknown[]]> = [
      [branch, ['k0', 'k1', 'k2', 'k3', 'k4', 'x'], [0, 1, 2, 3, 4, 'x']],
      [again, ['k0', 'k1', 'k2', 'k4', 'k3'], [0, 1, 'two', 4, 'three']],
      [further, ['k0', 'k1', 'k2', 'k3', 'k4', 'x', 'y'], [0, 1, 2, 3, 4, 'x', 'y']],
      [deleted, ['k0', 'k1', 'k2', 'k4'], [0, 1, 'two', 4]],
      [base, ['k0', 'k1', 'k2', 'k3', 'k4'], [0, 1, 2, 3, 4]],
      [again, ['k0', 'k1', 'k2', 'k4', 'k3'], [0, 1, 'two', 4, 'three']],
      [replaced, ['k0', 'k1', 'k2', 'k3', 'k4'], [0, 1, 'two', 3, 4]],
    ];
    for (const [data, keys, values] of reads) {
      // A fresh object each time: `recordKeys` is cached per version, the facade's JSON is not.
      expect(Object.keys(JSON.parse(JSON.stringify(recordFacade(data))) as object)).toEqual(keys);
      expect(Object.values(JSON.parse(JSON.stringify(recordFacade(data))) as object)).toEqual(values);
    }
    // Set again and deleted once more on a branch of its own, then undone both ways.
    const twice = recordSet(recordDelete(again, 'k0'), 'k0', 'zero');
    expect(recordKeys(twice)).toEqual(['k1', 'k2', 'k4', 'k3', 'k0']);
    expect(JSON.stringify(recordFacade(base))).toBe('{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4}');
    expect(JSON.stringify(recordFacade(twice))).toBe('{"k1":1,"k2":"two","k4":4,"k3":"three","k0":"zero"}');
    expect(JSON.stringify(recordFacade(further))).toBe('{"k0":0,"k1":1,"k2":2,"k3":3,"k4":4,"x":"x","y":"y"}');
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

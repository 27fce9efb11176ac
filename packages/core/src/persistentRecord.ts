/**
 * Large records of a state (a board's `tasks`, 100,000 entries) as persistent maps that look like
 * plain objects: the data is every version of one map, kept by rerooting (`recordVersions.ts`).
 * Changing one entry costs one map write and one small object (the new version) instead of a copy of
 * the record; every entry that did not change keeps its identity.
 *
 * Readers see a {@link recordFacade}: a Proxy whose traps answer from the record's map, so `record[key]`,
 * `key in record`, `Object.keys/values/entries`, spread, `for…in`, `JSON.stringify`, msgpack and
 * `toEqual` behave as on the plain object, in the same key order (integer keys first, ascending,
 * then insertion order). What a Proxy cannot pass for: `structuredClone` (use JSON, or
 * {@link toPlainState}), `Object.freeze` (refused) and Node's `util.inspect`, shown through a hook.
 *
 * Only `draft.ts` builds them, when a draft changes a plain object of {@link RECORD_THRESHOLD} keys
 * or more; assigning to a facade outside a draft works too (a new version: the facade then holds the
 * new version), as assigning to a plain object would.
 */

import { ABSENT, forEachEntry, recordDelete, recordGet, recordKeys, recordSet, type RecordData } from './recordVersions.js';

export { RECORD_THRESHOLD } from './recordVersions.js';

const INSPECT = Symbol.for('nodejs.util.inspect.custom');
/** What a facade answers its handler for (a plain object answers undefined). */
const HANDLER = Symbol('lockstep.record');

/**
 * The one target of every facade: a plain, extensible object, so the facades pass for plain objects
 * (`Object.getPrototypeOf` is `Object.prototype`) and may report any configurable keys. It holds two
 * non-enumerable methods that the facades do not list as their own (a record key of the same name
 * wins over them):
 * - `toJSON`, so that `JSON.stringify` of a facade reads the map directly rather than through a trap
 *   per key (two to three times faster on 100,000 entries) and writes the same text;
 * - Node's inspect hook: `util.inspect` looks at a Proxy's target, not through its traps.
 */
const TARGET: object = {};
Object.defineProperty(TARGET, 'toJSON', {
  configurable: true,
  enumerable: false,
  writable: false,
  value(this: object) {
    return toPlainRecord(this);
  },
});
Object.defineProperty(TARGET, INSPECT, {
  configurable: true,
  enumerable: false,
  writable: false,
  value(this: object, _depth: number, options: object, inspect: (value: unknown, options: object) => string) {
    return inspect(toPlainRecord(this), options);
  },
});

function readOnlyShape(what: string): never {
  throw new TypeError(`a persistent record of a Lockstep state ${what}`);
}

class RecordHandler implements ProxyHandler<object> {
  /** Symbol-keyed properties, which the map does not hold (rare: tools tagging objects). */
  symbols: Map<symbol, unknown> | undefined;
  constructor(public data: RecordData) {}

  get(target: object, key: string | symbol, receiver: unknown): unknown {
    if (typeof key === 'string') {
      const value = recordGet(this.data, key);
      if (value !== ABSENT) return value;
    } else if (key === HANDLER) {
      return this;
    } else if (this.symbols?.has(key)) {
      return this.symbols.get(key);
    }
    return Reflect.get(target, key, receiver);
  }

  has(target: object, key: string | symbol): boolean {
    if (typeof key === 'string' ? recordGet(this.data, key) !== ABSENT : this.symbols?.has(key)) return true;
    return Reflect.has(target, key);
  }

  ownKeys(): Array<string | symbol> {
    const keys = recordKeys(this.data);
    return this.symbols === undefined ? keys : [...keys, ...this.symbols.keys()];
  }

  getOwnPropertyDescriptor(_target: object, key: string | symbol): PropertyDescriptor | undefined {
    if (typeof key === 'string') {
      const value = recordGet(this.data, key);
      return value === ABSENT ? undefined : { value, writable: true, enumerable: true, configurable: true };
    }
    return this.symbols?.has(key) ? { value: this.symbols.get(key), writable: true, enumerable: true, configurable: true } : undefined;
  }

  set(_target: object, key: string | symbol, value: unknown): boolean {
    if (typeof key === 'string') this.data = recordSet(this.data, key, value);
    else (this.symbols ??= new Map()).set(key, value);
    return true;
  }

  deleteProperty(_target: object, key: string | symbol): boolean {
    if (typeof key === 'string') this.data = recordDelete(this.data, key);
    else this.symbols?.delete(key);
    return true;
  }

  defineProperty(target: object, key: string | symbol, descriptor: PropertyDescriptor): boolean {
    if (!('value' in descriptor) || descriptor.enumerable === false || descriptor.configurable === false || descriptor.writable === false) {
      readOnlyShape('holds plain data properties only (enumerable, writable, configurable)');
    }
    return this.set(target, key, descriptor.value);
  }

  preventExtensions(): boolean {
    return readOnlyShape('cannot be frozen or sealed');
  }

  setPrototypeOf(): boolean {
    return readOnlyShape('keeps Object.prototype as its prototype');
  }
}

/** A plain-looking object over `data`. */
export function recordFacade(data: RecordData): Record<string, unknown> {
  return new Proxy(TARGET, new RecordHandler(data)) as Record<string, unknown>;
}

/** The data behind a facade, or undefined when `value` is not one. */
export function recordDataOf(value: object): RecordData | undefined {
  return ((value as Record<symbol, unknown>)[HANDLER] as RecordHandler | undefined)?.data;
}

/** True for the persistent records (facades) that large collections of a state become. */
export function isPersistentRecord(value: unknown): boolean {
  return typeof value === 'object' && value !== null && recordDataOf(value) !== undefined;
}

/** A plain object with the facade's entries (one level: the values are shared), for `structuredClone` and the like. */
export function toPlainRecord(facade: object): Record<string, unknown> {
  const data = recordDataOf(facade);
  if (data === undefined) return { ...facade };
  const plain: Record<string, unknown> = {};
  forEachEntry(data, (key, value) => (plain[key] = value));
  return plain;
}

/**
 * `value` with every persistent record in it, at any depth, replaced by a plain object: for what
 * cannot take a Proxy, such as `structuredClone` or IndexedDB. Containers without one are returned
 * as they are (shared), so a small state costs one walk and no copy.
 */
export function toPlainState<T>(value: T): T {
  if (typeof value !== 'object' || value === null) return value;
  const data = recordDataOf(value);
  if (data !== undefined) {
    const plain: Record<string, unknown> = {};
    forEachEntry(data, (key, value) => (plain[key] = toPlainState(value)));
    return plain as T;
  }
  if (Array.isArray(value)) {
    let out: unknown[] = value;
    for (let i = 0; i < value.length; i++) {
      const item = toPlainState(value[i] as unknown);
      if (item === value[i]) continue;
      if (out === value) out = value.slice();
      out[i] = item;
    }
    return out as T;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  let out = value as Record<string, unknown>;
  for (const key of Object.keys(value)) {
    const before = (value as Record<string, unknown>)[key];
    const item = toPlainState(before);
    if (item === before) continue;
    if (out === value) out = { ...out };
    out[key] = item;
  }
  return out as T;
}

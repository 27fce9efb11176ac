/**
 * Copy-on-write drafts for `evolve` handlers, in place of immer's: the same way of writing (mutate a
 * draft, get a new state that shares everything unchanged), with two differences that make the cost
 * of a change independent of the size of the state.
 *
 * - Reading never copies. immer copies an object as soon as a child of it is drafted, so reading one
 *   task of a board copied the whole `tasks` record; here an object is copied only when it is itself
 *   written to, and its drafted children live beside it until the draft finishes.
 * - A plain object of {@link RECORD_THRESHOLD} keys or more that a draft changes becomes a persistent
 *   record (`persistentRecord.ts`): a plain-looking object over versions of one map (`recordVersions.ts`).
 *   The first change of such an object costs one pass over it; every later one O(1).
 *
 * Drafted: plain objects, arrays and persistent records. Anything else (a Map, a Date, a class
 * instance) is a value, as in immer without its Map/Set plugin: states are JSON data. Without
 * auto-freeze, as before (decision 2).
 */
import { recordDataOf, recordFacade } from './persistentRecord.js';
import {
  ABSENT,
  RECORD_THRESHOLD,
  recordDelete,
  recordFromObject,
  recordGet,
  recordKeys,
  recordReplace,
  recordSet,
  type RecordData,
} from './recordVersions.js';

const DRAFT = Symbol('lockstep.draft');

let threshold = RECORD_THRESHOLD;

/**
 * @internal For test runs that turn every changed object into a persistent record (threshold 1), to
 * check that whole suites cannot tell them from plain objects. Not exported from the package.
 */
export function setRecordThreshold(keys: number): void {
  threshold = keys;
}

const OBJECT = 0;
const ARRAY = 1;
const RECORD = 2;
type Kind = typeof OBJECT | typeof ARRAY | typeof RECORD;

class DraftState {
  /** Objects and arrays: their shallow copy, once written to. */
  copy: any = undefined;
  /** Records: the version being written. */
  data: RecordData | undefined;
  /**
   * Drafts handed out for children, by key: valid while the key still holds their base. The first
   * one is kept in `firstKey`/`first` (most drafts have one child: no Map for them).
   */
  firstKey: PropertyKey | undefined;
  first: DraftState | undefined;
  children: Map<PropertyKey, DraftState> | undefined;
  /** A record's child: the version of the record its base was read from. */
  readFrom: RecordData | undefined = undefined;
  /** Keys given an object value in this draft: it may hold drafts, replaced when the draft finishes. */
  assigned: Set<PropertyKey> | undefined;
  modified = false;
  /** Set on the root draft when it is finished: every draft of the tree is read-only from then on. */
  finished = false;
  result: unknown = undefined;
  proxy: any;
  /** The draft opened by {@link createDraft} that this one belongs to. */
  readonly root: DraftState;
  constructor(
    /** RECORD once a large plain object is written to (see {@link becomeRecordIfLarge}). */
    public kind: Kind,
    readonly base: any,
    readonly parent: DraftState | undefined,
  ) {
    this.root = parent === undefined ? this : parent.root;
    if (kind === RECORD) this.data = recordDataOf(base);
  }
}

function kindOf(value: object): Kind | undefined {
  if (Array.isArray(value)) return ARRAY;
  if (recordDataOf(value) !== undefined) return RECORD;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null ? OBJECT : undefined;
}

function stateOf(value: unknown): DraftState | undefined {
  return typeof value === 'object' && value !== null ? ((value as Record<symbol, unknown>)[DRAFT] as DraftState | undefined) : undefined;
}

/**
 * `record[key]` for a string key, read without handing the key to a Proxy: a Proxy's traps receive
 * their key as an interned string, and interning a fresh key (an id from an event) is a look-up in the
 * engine's table of every interned string — on a large state the costliest step of reading one entry.
 */
export function readKey(record: object, key: string): unknown {
  const state = (record as Record<symbol, DraftState | undefined>)[DRAFT];
  if (state !== undefined) return state.kind === RECORD ? recordTraps.get!(state, key, state.proxy) : state.proxy[key];
  const data = recordDataOf(record);
  if (data !== undefined) {
    const value = recordGet(data, key);
    return value === ABSENT ? undefined : value;
  }
  return (record as Record<string, unknown>)[key];
}

/** True for a draft (of any depth) handed out by {@link createDraft}. */
export function isDraft(value: unknown): boolean {
  return stateOf(value) !== undefined;
}

/** True for what a draft can be opened on: a plain object, an array or a persistent record. */
export function isDraftable(value: unknown): value is object {
  return typeof value === 'object' && value !== null && kindOf(value) !== undefined;
}

function create(kind: Kind, base: object, parent: DraftState | undefined): DraftState {
  const state = new DraftState(kind, base, parent);
  state.proxy = kind === ARRAY ? new Proxy([state], arrayTraps) : new Proxy(state, kind === RECORD ? recordTraps : objectTraps);
  return state;
}

/** Opens a draft of `base` (see {@link isDraftable}). */
export function createDraft<T extends object>(base: T): T {
  const kind = kindOf(base);
  if (kind === undefined) throw new TypeError('only plain objects, arrays and persistent records can be drafted');
  return create(kind, base, undefined).proxy as T;
}

/** Closes a draft: the new state, or the base itself when nothing changed. The draft is read-only afterwards. */
export function finishDraft<T>(draft: T): T {
  const state = stateOf(draft);
  if (state === undefined) throw new TypeError('not a draft');
  const result = finalize(state);
  state.root.finished = true;
  return result as T;
}

/** A copy of what the draft holds now, sharing what did not change: no draft inside. */
export function current<T>(value: T): T {
  const state = stateOf(value);
  if (state === undefined) return value;
  return snapshot(state) as T;
}

function childOf(state: DraftState, key: PropertyKey, value: object): DraftState | undefined {
  const child = state.firstKey === key ? state.first : state.children?.get(key);
  if (child !== undefined && child.base === value) return child;
  return undefined;
}

function addChild(state: DraftState, key: PropertyKey, child: DraftState): void {
  if (state.first === undefined || state.firstKey === key) {
    state.firstKey = key;
    state.first = child;
  } else {
    (state.children ??= new Map()).set(key, child);
  }
}

function draftChild(state: DraftState, key: PropertyKey, value: object, fromBase: boolean): unknown {
  if (value[DRAFT as keyof object] !== undefined) return value;
  const kind = kindOf(value);
  // A value assigned in this draft is new and the draft's own: handed out as it is, as immer does.
  // A persistent record is drafted wherever it came from: it may be shared with other states.
  if (kind === undefined || (!fromBase && kind !== RECORD)) return value;
  const child = create(kind, value, state);
  addChild(state, key, child);
  return child.proxy;
}

function markModified(state: DraftState | undefined): void {
  while (state !== undefined && !state.modified) {
    state.modified = true;
    state = state.parent;
  }
}

function writable(state: DraftState): void {
  if (state.root.finished) throw new TypeError('this draft is finished: change the state in an evolve handler');
}

function shallowCopy(base: any, kind: Kind): any {
  if (kind === ARRAY) return (base as unknown[]).slice();
  return Object.getPrototypeOf(base) === null ? Object.assign(Object.create(null), base) : { ...base };
}

function prepareCopy(state: DraftState): any {
  return (state.copy ??= shallowCopy(state.base, state.kind));
}

const hasOwn = (object: object, key: PropertyKey) => Object.prototype.hasOwnProperty.call(object, key);

/** Traps of object and array drafts (arrays: the target is `[state]`, so `Array.isArray` holds). */
function objectLikeTraps(stateFrom: (target: any) => DraftState): ProxyHandler<any> {
  return {
    get(target, key) {
      const state = stateFrom(target);
      if (key === DRAFT) return state;
      const source = state.copy ?? state.base;
      const value = source[key];
      if (typeof value !== 'object' || value === null) return value;
      const child = childOf(state, key, value);
      if (child !== undefined) return child.proxy;
      if (!hasOwn(source, key)) return value;
      return draftChild(state, key, value, value === state.base[key] && !state.assigned?.has(key));
    },
    set(target, key, value) {
      const state = stateFrom(target);
      writable(state);
      const source = state.copy ?? state.base;
      const present = source[key];
      if (Object.is(present, value) && (value !== undefined || hasOwn(source, key))) return true;
      if (typeof present === 'object' && present !== null && childOf(state, key, present)?.proxy === value) return true;
      prepareCopy(state)[key] = value;
      markModified(state);
      if (typeof value === 'object' && value !== null) (state.assigned ??= new Set()).add(key);
      return true;
    },
    deleteProperty(target, key) {
      const state = stateFrom(target);
      writable(state);
      if (!hasOwn(state.copy ?? state.base, key)) return true;
      delete prepareCopy(state)[key];
      markModified(state);
      return true;
    },
    has(target, key) {
      const state = stateFrom(target);
      return key in (state.copy ?? state.base);
    },
    ownKeys(target) {
      const state = stateFrom(target);
      return Reflect.ownKeys(state.copy ?? state.base);
    },
    getOwnPropertyDescriptor(target, key) {
      const state = stateFrom(target);
      const source = state.copy ?? state.base;
      const descriptor = Reflect.getOwnPropertyDescriptor(source, key);
      if (descriptor === undefined) return undefined;
      return { value: source[key], writable: true, enumerable: descriptor.enumerable ?? false, configurable: state.kind !== ARRAY || key !== 'length' };
    },
    defineProperty(target, key, descriptor) {
      if (!('value' in descriptor)) throw new TypeError('a draft holds data properties only');
      return this.set!(target, key, descriptor.value, undefined);
    },
    getPrototypeOf(target) {
      return Object.getPrototypeOf(stateFrom(target).base);
    },
    setPrototypeOf() {
      throw new TypeError('a draft keeps its prototype');
    },
    preventExtensions() {
      throw new TypeError('a draft cannot be frozen or sealed');
    },
  };
}

const plainTraps = objectLikeTraps((target: DraftState) => target);
const arrayTraps = objectLikeTraps((target: [DraftState]) => target[0]);

const inherited = Object.prototype;

/** A plain object (not a record yet) of at least the threshold's keys. */
function isLargePlain(value: object): boolean {
  return Object.getPrototypeOf(value) === inherited && hasKeys(value, threshold);
}

/**
 * Before the first write to a plain object of the threshold's size or more (or when its draft
 * finishes, if only its children changed), its draft becomes a record draft over a record built
 * from the base: one pass over it, instead of a copy of it and then
 * a pass over the copy when the draft finishes (a board of 100,000 tasks loaded from a snapshot:
 * 60 ms less on its first change).
 */
function becomeRecordIfLarge(state: DraftState): void {
  if (state.kind !== OBJECT || state.copy !== undefined || !isLargePlain(state.base)) return;
  state.kind = RECORD;
  state.data = recordFromObject(state.base);
}

/** The traps an object draft answers with now: a plain object's, or a record's once it became one. */
const trapsOf = (state: DraftState): ProxyHandler<DraftState> => (state.kind === RECORD ? recordTraps : plainTraps);

/** Traps of object drafts: a plain object's, or a record's once the draft became one. */
const objectTraps: ProxyHandler<DraftState> = {
  get: (state, key, receiver) => trapsOf(state).get!(state, key, receiver),
  set(state, key, value, receiver) {
    becomeRecordIfLarge(state);
    return trapsOf(state).set!(state, key, value, receiver);
  },
  deleteProperty(state, key) {
    becomeRecordIfLarge(state);
    return trapsOf(state).deleteProperty!(state, key);
  },
  has: (state, key) => trapsOf(state).has!(state, key),
  ownKeys: (state) => trapsOf(state).ownKeys!(state),
  getOwnPropertyDescriptor: (state, key) => trapsOf(state).getOwnPropertyDescriptor!(state, key),
  defineProperty(state, key, descriptor) {
    if (!('value' in descriptor)) throw new TypeError('a draft holds data properties only');
    return objectTraps.set!(state, key, descriptor.value, undefined);
  },
  getPrototypeOf: (state) => plainTraps.getPrototypeOf!(state),
  setPrototypeOf: (state, proto) => plainTraps.setPrototypeOf!(state, proto),
  preventExtensions: (state) => plainTraps.preventExtensions!(state),
};

const recordTraps: ProxyHandler<DraftState> = {
  get(state, key, receiver) {
    if (key === DRAFT) return state;
    if (typeof key !== 'string') return Reflect.get(inherited, key, receiver);
    const value = recordGet(state.data!, key);
    if (value === ABSENT) return Reflect.get(inherited, key, receiver);
    if (typeof value !== 'object' || value === null) return value;
    const child = childOf(state, key, value);
    if (child !== undefined) return child.proxy;
    const drafted = draftChild(state, key, value, !state.assigned?.has(key));
    // Remembered so that finishing writes the child back without looking its key up again.
    const made = childOf(state, key, value);
    if (made !== undefined) made.readFrom = state.data;
    return drafted;
  },
  set(state, key, value) {
    writable(state);
    if (typeof key !== 'string') throw new TypeError('a persistent record holds string keys only');
    const present = recordGet(state.data!, key);
    if (present !== ABSENT) {
      if (Object.is(present, value)) return true;
      if (typeof present === 'object' && present !== null && childOf(state, key, present)?.proxy === value) return true;
    }
    state.data = recordSet(state.data!, key, value);
    markModified(state);
    if (typeof value === 'object' && value !== null) (state.assigned ??= new Set()).add(key);
    return true;
  },
  deleteProperty(state, key) {
    writable(state);
    if (typeof key !== 'string') return true;
    const data = recordDelete(state.data!, key);
    if (data !== state.data) {
      state.data = data;
      markModified(state);
    }
    return true;
  },
  has(state, key) {
    if (typeof key === 'string' && recordGet(state.data!, key) !== ABSENT) return true;
    return key in inherited;
  },
  ownKeys(state) {
    return recordKeys(state.data!);
  },
  getOwnPropertyDescriptor(state, key) {
    if (typeof key !== 'string') return undefined;
    const value = recordGet(state.data!, key);
    return value === ABSENT ? undefined : { value, writable: true, enumerable: true, configurable: true };
  },
  defineProperty(state, key, descriptor) {
    if (!('value' in descriptor)) throw new TypeError('a draft holds data properties only');
    return recordTraps.set!(state, key, descriptor.value, undefined);
  },
  getPrototypeOf() {
    return inherited;
  },
  setPrototypeOf() {
    throw new TypeError('a draft keeps its prototype');
  },
  preventExtensions() {
    throw new TypeError('a draft cannot be frozen or sealed');
  },
};

/** At least `count` own enumerable keys. */
function hasKeys(object: object, count: number): boolean {
  let n = 0;
  for (const _ in object) if (++n >= count) return true;
  return false;
}

/** The state a draft ends as (memoised: a draft assigned in two places gives one result). */
function finalize(state: DraftState): unknown {
  if (state.result !== undefined) return state.result;
  let result: unknown;
  if (!state.modified) {
    result = state.base;
  } else {
    // A large object whose children only changed becomes a record now, built from its base.
    becomeRecordIfLarge(state);
    if (state.kind === RECORD) {
      result = settledRecord(state, finalize, true);
    } else {
      const copy = settledCopy(state, prepareCopy(state), finalize, true);
      result = state.kind === OBJECT && Object.getPrototypeOf(copy) === inherited && hasKeys(copy, threshold) ? recordFacade(recordFromObject(copy)) : copy;
    }
  }
  state.result = result;
  return result;
}

/** What a draft holds now, without closing it: copies where it changed, the base elsewhere. */
function snapshot(state: DraftState): unknown {
  if (!state.modified) return state.base;
  if (state.kind === RECORD) return settledRecord(state, snapshot, false);
  return settledCopy(state, shallowCopy(state.copy ?? state.base, state.kind), snapshot, false);
}

/**
 * A changed record's new version, each changed child and each assigned value replaced by what
 * `settle` makes of its drafts (`finalize` when the draft finishes, `snapshot` for `current`).
 */
function settledRecord(state: DraftState, settle: (state: DraftState) => unknown, mutate: boolean): unknown {
  let data = state.data!;
  // Without a callback per child: this runs once per changed record per event.
  const drafted = data;
  if (state.first?.modified) data = settledRecordChild(data, drafted, state.firstKey as string, state.first, settle);
  if (state.children) for (const [key, child] of state.children) if (child.modified) data = settledRecordChild(data, drafted, key as string, child, settle);
  if (state.assigned) {
    for (const key of state.assigned) {
      const present = recordGet(data, key as string);
      if (present === ABSENT) continue;
      const value = resolve(present, settle, mutate);
      if (value !== present) data = recordSet(data, key as string, value);
    }
  }
  return recordFacade(data);
}

/**
 * `data` with the changed child draft under `key` settled. `drafted` is the version the record draft
 * ended with: a child read from it still has its base under its key (settling the others, each under
 * a key of its own, does not touch it), so it is written back without looking the key up again — a
 * batch of a thousand commands settles a thousand children. Otherwise one look-up tells.
 */
function settledRecordChild(data: RecordData, drafted: RecordData, key: string, child: DraftState, settle: (state: DraftState) => unknown): RecordData {
  if (child.readFrom === drafted || recordGet(data, key) === child.base) return recordReplace(data, key, child.base, settle(child));
  return data;
}

/** `copy` (of a changed object or array) with its changed children and assigned values settled, the same way. */
function settledCopy(state: DraftState, copy: any, settle: (state: DraftState) => unknown, mutate: boolean): any {
  const first = state.first;
  if (first?.modified && copy[state.firstKey!] === first.base) copy[state.firstKey!] = settle(first);
  if (state.children) for (const [key, child] of state.children) if (child.modified && copy[key] === child.base) copy[key] = settle(child);
  if (state.assigned) {
    for (const key of state.assigned) {
      const value = resolve(copy[key], settle, mutate);
      if (value !== copy[key]) copy[key] = value;
    }
  }
  return copy;
}

/**
 * `value` with every draft inside replaced by `settle(draft)`. `mutate`: in place, for values the
 * draft owns and is finishing with. Otherwise (`current`) a deep copy of the plain objects and arrays
 * (what the draft may still change in place), as immer's `current` makes.
 */
function resolve(value: unknown, settle: (state: DraftState) => unknown, mutate: boolean): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const state = stateOf(value);
  if (state !== undefined) return settle(state);
  if (Array.isArray(value)) {
    const out = mutate ? value : value.slice();
    for (let i = 0; i < out.length; i++) {
      const item = resolve(out[i], settle, mutate);
      if (item !== out[i]) out[i] = item;
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if ((proto !== inherited && proto !== null) || recordDataOf(value) !== undefined) return value;
  const out = (mutate ? value : shallowCopy(value, OBJECT)) as Record<string, unknown>;
  for (const key of Object.keys(out)) {
    const item = resolve(out[key], settle, mutate);
    if (item !== out[key]) out[key] = item;
  }
  return out;
}

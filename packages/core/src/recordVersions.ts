/**
 * The data behind persistent records (`persistentRecord.ts`): every version of a record, kept by
 * rerooting (Baker's trick; Conchon and Filliâtre's persistent arrays). The versions that share a
 * history form a family around one mutable `Map`, which holds the entries of one of them, the
 * family's root. Every other version is a change away from its neighbour towards the root: "as
 * `next`, with `key` set to `slot`". Reading a version that is not the root first walks it to the
 * root, undoing and redoing those changes in the map and reversing the links on the way.
 *
 * So a change costs one `Map.set` and one small object, and a read one `Map.get`, whatever the size
 * of the record — where a trie copies a path of nodes on every change, and follows it on every
 * read. The price is paid by whoever reads an old version: a walk as long as the changes between
 * it and the root. Two bounds keep that price and the memory it holds in check:
 *
 * - long walks (more than {@link SHORT_WALK} steps: two branches drifting apart, an old version read
 *   now and then) are counted per family; the walk that takes the count past the record's size gives
 *   the version it reached a map of its own instead (a copy: long walks never cost more than the
 *   copies they stand for). Short walks, such as a client's confirmed state and its optimistic
 *   state a few pending commands apart, are never counted;
 * - a family that grew more versions than twice the record's size gives its newest one a map of its
 *   own, so that an old version someone holds (and never reads) keeps at most that many changes alive.
 *
 * Every version is immutable: a change makes a new one (one small object), also inside a draft.
 */

/** A plain object with at least this many keys becomes a persistent record when a draft changes it. */
export const RECORD_THRESHOLD = 64;

/** Walks up to this many steps are the normal traffic of a few live versions: free. */
export const SHORT_WALK = 64;

/** The value a deleted key keeps in the map, so that restoring it keeps its place. */
const DELETED: unique symbol = Symbol('lockstep.deleted');

/** A key's value in one version, and its place in insertion order. Immutable. */
export class Entry {
  constructor(
    readonly key: string,
    readonly value: unknown,
    /** Position in insertion order. */
    readonly seq: number,
  ) {}
}

/** The versions that share one map. */
class Family {
  /** The version whose entries `map` holds. */
  root!: RecordData;
  /** Steps of long walks since this family began. */
  walked = 0;
  /** Versions made in this family. */
  versions = 0;
  /** Map order differs from insertion order (a restored key took a new place): sort before listing. */
  disordered = false;
  /** The highest `seq` the map has placed last, so far: an entry with a higher one may be appended. */
  lastSeq: number;
  constructor(
    public map: Map<string, Entry>,
    lastSeq: number,
  ) {
    this.lastSeq = lastSeq;
  }
}

/** One version of a record. Immutable once its draft has finished. */
export class RecordData {
  /** Own keys in `Object.keys` order, built when first asked for. */
  keys: string[] | undefined;
  /** Values in `Object.values` order, built when first asked for. */
  values: unknown[] | undefined;
  /** Towards the root: this version is `next` with `key` set to `slot` (absent: undefined). */
  next: RecordData | undefined = undefined;
  key: string | undefined = undefined;
  slot: Entry | undefined = undefined;
  /** The version with the same entries, in a map of its own: read that one (see the bounds above). */
  moved: RecordData | undefined = undefined;
  constructor(
    readonly family: Family,
    readonly size: number,
    /** Next insertion position. */
    readonly length: number,
    /** How many keys are array indices (`"0"`, `"17"`), which objects list first. */
    readonly indexKeys: number,
  ) {}
}

// --- the family's map -------------------------------------------------------------------------

/** Puts `slot` (or nothing) under `key` in the family's map, keeping map order = insertion order. */
function write(family: Family, key: string, slot: Entry | undefined, present: Entry | undefined): void {
  const map = family.map;
  if (slot === undefined) {
    map.delete(key);
  } else if (present !== undefined && present.seq === slot.seq) {
    map.set(key, slot);
  } else if (slot.seq > family.lastSeq) {
    if (present !== undefined) map.delete(key);
    map.set(key, slot);
    family.lastSeq = slot.seq;
  } else {
    // Its place is further up: listing sorts the map first (rare: a deleted key set again, then undone).
    map.set(key, slot);
    family.disordered = true;
  }
}

/** Makes `data` its family's root: walks the changes from the root back to it. */
function reroot(data: RecordData): void {
  const family = data.family;
  if (family.root === data) return;
  const path: RecordData[] = [];
  for (let at: RecordData = data; at !== family.root; at = at.next!) path.push(at);
  for (let i = path.length - 1; i >= 0; i--) {
    const version = path[i]!;
    const root = version.next!;
    const key = version.key!;
    const present = family.map.get(key);
    write(family, key, version.slot, present);
    root.next = version;
    root.key = key;
    root.slot = present;
    version.next = undefined;
    version.key = undefined;
    version.slot = undefined;
    family.root = version;
  }
}

/** The version to read for `data`: rerooted, or moved to a map of its own when walks outgrew a copy. */
function readable(data: RecordData): RecordData {
  let version = data;
  while (version.moved !== undefined) version = version.moved;
  const family = version.family;
  if (family.root === version) return version;
  let steps = 0;
  for (let at: RecordData = version; at !== family.root; at = at.next!) steps++;
  if (steps > SHORT_WALK) {
    family.walked += steps;
    if (family.walked > family.map.size) {
      family.walked = 0;
      version = ownCopy(version);
      data.moved = version;
      return version;
    }
  }
  reroot(version);
  return version;
}

/** A version with `data`'s entries in a new family (the old family is left as it is). */
function ownCopy(data: RecordData): RecordData {
  const family = data.family;
  const path: RecordData[] = [];
  for (let at: RecordData = data; at !== family.root; at = at.next!) path.push(at);
  const map = new Map<string, Entry>();
  // Live entries in insertion order: a fresh map sheds the deleted keys and any disorder.
  const changed = new Map<string, Entry | undefined>();
  for (let i = path.length - 1; i >= 0; i--) changed.set(path[i]!.key!, path[i]!.slot);
  const entries: Entry[] = [];
  for (const entry of family.map.values()) {
    const slot = changed.has(entry.key) ? changed.get(entry.key) : entry;
    if (slot !== undefined && slot.value !== DELETED) entries.push(slot);
    changed.delete(entry.key);
  }
  for (const slot of changed.values()) if (slot !== undefined && slot.value !== DELETED) entries.push(slot);
  entries.sort((a, b) => a.seq - b.seq);
  for (const entry of entries) map.set(entry.key, entry);
  const fresh = new Family(map, entries.length === 0 ? -1 : entries[entries.length - 1]!.seq);
  const version = new RecordData(fresh, data.size, data.length, data.indexKeys);
  fresh.root = version;
  return version;
}

/** The map's entries (deleted ones included) in insertion order. */
function sortedEntries(family: Family): Iterable<Entry> {
  if (!family.disordered) return family.map.values();
  const entries = [...family.map.values()].sort((a, b) => a.seq - b.seq);
  family.map = new Map(entries.map((entry) => [entry.key, entry]));
  family.disordered = false;
  family.lastSeq = entries.length === 0 ? -1 : entries[entries.length - 1]!.seq;
  return family.map.values();
}

// --- records ----------------------------------------------------------------------------------

/** `"0"`…`"4294967294"` written canonically: the keys objects list first, in numeric order. */
function isIndexKey(key: string): boolean {
  const first = key.charCodeAt(0);
  if (first < 48 || first > 57 || key.length > 10) return false;
  if (first === 48) return key.length === 1;
  for (let i = 1; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return Number(key) < 4294967295;
}

export function recordGet(data: RecordData, key: string): Entry | undefined {
  const entry = readable(data).family.map.get(key);
  return entry === undefined || entry.value === DELETED ? undefined : entry;
}

/** `data` with `key` set to `value` (the same object when the value was already there). */
export function recordSet(data: RecordData, key: string, value: unknown): RecordData {
  const base = readable(data);
  const present = base.family.map.get(key);
  const live = present !== undefined && present.value !== DELETED;
  if (live && present.value === value) return data;
  const slot = new Entry(key, value, live ? present.seq : base.length);
  const size = live ? base.size : base.size + 1;
  const length = live ? base.length : base.length + 1;
  const indexKeys = !live && isIndexKey(key) ? base.indexKeys + 1 : base.indexKeys;
  return change(base, key, slot, present, size, length, indexKeys);
}

/**
 * `data` with the key of `present`, its entry, set to `value`: {@link recordSet} without looking the
 * key up, for a caller that read `present` from `data` itself.
 */
export function recordReplace(data: RecordData, present: Entry, value: unknown): RecordData {
  if (present.value === value) return data;
  const base = readable(data);
  return change(base, present.key, new Entry(present.key, value, present.seq), present, base.size, base.length, base.indexKeys);
}

/** `data` without `key` (the same object when it had none). */
export function recordDelete(data: RecordData, key: string): RecordData {
  const base = readable(data);
  const present = base.family.map.get(key);
  if (present === undefined || present.value === DELETED) return data;
  const indexKeys = isIndexKey(key) ? base.indexKeys - 1 : base.indexKeys;
  return change(base, key, new Entry(key, DELETED, present.seq), present, base.size - 1, base.length, indexKeys);
}

/** The version after `key` took `slot` in `base` (the root of its family). */
function change(base: RecordData, key: string, slot: Entry, present: Entry | undefined, size: number, length: number, indexKeys: number): RecordData {
  const family = base.family;
  // Bounds what an old version can hold alive, and the deleted keys the map keeps: a fresh map.
  if (++family.versions > 2 * family.map.size + SHORT_WALK) {
    const copy = ownCopy(base);
    const fresh = new RecordData(copy.family, size, length, indexKeys);
    write(copy.family, key, slot, copy.family.map.get(key));
    copy.family.root = fresh;
    return fresh;
  }
  const next = new RecordData(family, size, length, indexKeys);
  write(family, key, slot, present);
  base.next = next;
  base.key = key;
  base.slot = present;
  family.root = next;
  return next;
}

/** Own keys in the order a plain object would list them. Cached: do not change the array. */
export function recordKeys(data: RecordData): string[] {
  if (data.keys !== undefined) return data.keys;
  const keys: string[] = [];
  const indices: string[] = [];
  const hasIndices = data.indexKeys > 0;
  for (const entry of sortedEntries(readable(data).family)) {
    if (entry.value === DELETED) continue;
    if (hasIndices && isIndexKey(entry.key)) indices.push(entry.key);
    else keys.push(entry.key);
  }
  if (hasIndices) {
    indices.sort((a, b) => Number(a) - Number(b));
    keys.unshift(...indices);
  }
  data.keys = keys;
  return keys;
}

/** A record holding `object`'s own enumerable string keys, in its order: built in one pass, not key by key. */
export function recordFromObject(object: object): RecordData {
  const keys = Object.keys(object);
  const map = new Map<string, Entry>();
  let indexKeys = 0;
  for (let seq = 0; seq < keys.length; seq++) {
    const key = keys[seq]!;
    map.set(key, new Entry(key, (object as Record<string, unknown>)[key], seq));
    if (isIndexKey(key)) indexKeys++;
  }
  const family = new Family(map, keys.length - 1);
  const data = new RecordData(family, keys.length, keys.length, indexKeys);
  family.root = data;
  // Insertion order equals listing order only without index keys (objects list those first).
  if (indexKeys === 0) data.keys = keys;
  return data;
}

/** Every entry, in the order a plain object lists its keys. */
export function entriesInOrder(data: RecordData): Entry[] {
  const entries: Entry[] = [];
  for (const entry of sortedEntries(readable(data).family)) if (entry.value !== DELETED) entries.push(entry);
  if (data.indexKeys > 0) {
    const indices = entries.filter((entry) => isIndexKey(entry.key)).sort((a, b) => Number(a.key) - Number(b.key));
    return [...indices, ...entries.filter((entry) => !isIndexKey(entry.key))];
  }
  return entries;
}

/** The record's values in `Object.values` order, without a trap per key. Cached: do not change the array. */
export function recordValues(data: RecordData): unknown[] {
  return (data.values ??= entriesInOrder(data).map((entry) => entry.value));
}

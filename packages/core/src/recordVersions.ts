/**
 * The data behind persistent records (`persistentRecord.ts`): every version of a record, kept by
 * rerooting (Baker's trick; Conchon and Filliâtre's persistent arrays). The versions that share a
 * history form a family around one mutable `Map`, which holds the values of one of them, the
 * family's root. Every other version is a change away from its neighbour towards the root: "as
 * `next`, with `key` set to `slot`". Reading a version that is not the root first walks it to the
 * root, undoing and redoing those changes in the map and reversing the links on the way.
 *
 * So a change costs one `Map.set` and one small object, and a read one `Map.get`, whatever the size
 * of the record — where a trie copies a path of nodes on every change, and follows it on every
 * read. The map holds the values themselves, nothing around them: on a large record every object
 * between the key and the value is one more cache miss per read. The price is paid by whoever reads
 * an old version: a walk as long as the changes between it and the root. Two bounds keep that price
 * and the memory it holds in check:
 *
 * - long walks (more than {@link SHORT_WALK} steps: two branches drifting apart, an old version read
 *   now and then) are counted per family; the walk that takes the count past the record's size gives
 *   the version it reached a map of its own instead (a copy: long walks never cost more than the
 *   copies they stand for). Short walks, such as a client's confirmed state and its optimistic
 *   state a few pending commands apart, are never counted;
 * - a family that grew more versions than twice the record's size gives its newest one a map of its
 *   own, so that an old version someone holds (and never reads) keeps at most that many changes alive.
 *
 * **Order.** A record lists its keys as a plain object does: in insertion order (index keys aside),
 * where a key deleted and set again moves to the end. The map's own order serves as long as no key
 * of the family was ever set again after being deleted: every change then keeps a key's place
 * (a new value, or a tombstone for a deleted key, so that undoing the delete restores its place),
 * appends a new key, or removes a new key again — and undoing and redoing changes in a walk does the
 * same, last in first out. Setting a deleted key again is the one change whose undo must move a
 * key back to an earlier place, which a `Map` cannot do: from the first one, the family numbers its
 * keys' places (`seqs`, one pass over the map), every link remembers the place of the value it
 * holds, and a key put back out of place marks the map for sorting before it is listed.
 *
 * Every version is immutable: a change makes a new one (one small object), also inside a draft.
 */

/** A plain object with at least this many keys becomes a persistent record when a draft changes it. */
export const RECORD_THRESHOLD = 64;

/** Walks up to this many steps are the normal traffic of a few live versions: free. */
export const SHORT_WALK = 64;

/** What {@link recordGet} answers for a key the version does not hold. */
export const ABSENT: unique symbol = Symbol('lockstep.absent');

/** The value a deleted key keeps in the map, so that restoring it keeps its place. */
const DELETED: unique symbol = Symbol('lockstep.deleted');

/** The versions that share one map. */
class Family {
  /** The version whose values `map` holds. */
  root!: RecordData;
  /** Steps of long walks since this family began. */
  walked = 0;
  /** Versions made in this family. */
  versions = 0;
  /**
   * Each key's place in insertion order, from the first deleted key set again (see "Order" above);
   * undefined until then, when the map's own order is the order.
   */
  seqs: Map<string, number> | undefined = undefined;
  /** The highest place handed out so far. */
  nextSeq = -1;
  /** The highest place the map has put last, so far: a key with a higher one may be appended. */
  lastSeq = -1;
  /** Map order differs from insertion order (a key put back in an earlier place): sort before listing. */
  disordered = false;
  constructor(public map: Map<string, unknown>) {}
}

/** One version of a record. Immutable once its draft has finished. */
export class RecordData {
  /** Own keys in `Object.keys` order, built when first asked for. */
  keys: string[] | undefined;
  /** Values in `Object.values` order, built when first asked for. */
  values: unknown[] | undefined;
  /** Towards the root: this version is `next` with `key` set to `slot`. */
  next: RecordData | undefined = undefined;
  key: string | undefined = undefined;
  /** The value, `DELETED` for a tombstone, `ABSENT` for a key this version does not have. */
  slot: unknown = undefined;
  /** The slot's place in insertion order, when the family numbers them (see `Family.seqs`). */
  slotSeq: number | undefined = undefined;
  /** The version with the same entries, in a map of its own: read that one (see the bounds above). */
  moved: RecordData | undefined = undefined;
  constructor(
    readonly family: Family,
    readonly size: number,
    /** How many keys are array indices (`"0"`, `"17"`), which objects list first. */
    readonly indexKeys: number,
  ) {}
}

// --- the family's map -------------------------------------------------------------------------

/**
 * Puts `slot` under `key` in the family's map, at place `seq` when the family numbers places
 * (undefined: where the key is, or last when it is new). Keeps map order = insertion order, or
 * marks the map for sorting.
 */
function write(family: Family, key: string, slot: unknown, seq: number | undefined): void {
  const map = family.map;
  const seqs = family.seqs;
  if (slot === ABSENT) {
    map.delete(key);
    seqs?.delete(key);
    return;
  }
  if (seqs === undefined) {
    map.set(key, slot);
    return;
  }
  const current = seqs.get(key);
  const place = seq ?? current ?? ++family.nextSeq;
  if (place === current) {
    map.set(key, slot);
    return;
  }
  if (place > family.lastSeq) {
    if (current !== undefined) map.delete(key);
    map.set(key, slot);
    family.lastSeq = place;
  } else {
    // Its place is further up: listing sorts the map first (rare: a deleted key set again, then undone).
    map.set(key, slot);
    family.disordered = true;
  }
  seqs.set(key, place);
}

/** From now on the family numbers its keys' places: their places in the map, which is in order. */
function numberPlaces(family: Family): void {
  const seqs = new Map<string, number>();
  let seq = 0;
  for (const key of family.map.keys()) seqs.set(key, seq++);
  family.seqs = seqs;
  family.nextSeq = family.lastSeq = seq - 1;
}

/** What `map` holds under `key`: a value, `DELETED`, or `ABSENT`. */
function slotOf(map: Map<string, unknown>, key: string): unknown {
  const slot = map.get(key);
  return slot === undefined && !map.has(key) ? ABSENT : slot;
}

/** Makes `data` its family's root: walks the changes from the root back to it. */
function reroot(data: RecordData): void {
  const family = data.family;
  if (family.root === data) return;
  const path: RecordData[] = [];
  for (let at: RecordData = data; at !== family.root; at = at.next!) path.push(at);
  const map = family.map;
  for (let i = path.length - 1; i >= 0; i--) {
    const version = path[i]!;
    const root = version.next!;
    const key = version.key!;
    const present = slotOf(map, key);
    const presentSeq = family.seqs?.get(key);
    write(family, key, version.slot, version.slotSeq);
    root.next = version;
    root.key = key;
    root.slot = present;
    root.slotSeq = presentSeq;
    version.next = undefined;
    version.key = undefined;
    version.slot = undefined;
    version.slotSeq = undefined;
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
  reroot(version);
  if (steps > SHORT_WALK) {
    family.walked += steps;
    if (family.walked > family.map.size) {
      // This version and the others of its family drift apart: it leaves with a map of its own.
      family.walked = 0;
      const copy = ownCopy(version);
      data.moved = copy;
      return copy;
    }
  }
  return version;
}

/** The family's map in insertion order: sorted first if a key was put back out of place. */
function ordered(family: Family): Map<string, unknown> {
  if (!family.disordered) return family.map;
  const seqs = family.seqs!;
  const keys = [...family.map.keys()].sort((a, b) => seqs.get(a)! - seqs.get(b)!);
  const map = new Map<string, unknown>();
  for (const key of keys) map.set(key, family.map.get(key));
  family.map = map;
  family.disordered = false;
  family.lastSeq = keys.length === 0 ? -1 : seqs.get(keys[keys.length - 1]!)!;
  return map;
}

/** A version with the entries of `root` (its family's root) in a new family: a fresh map, without tombstones. */
function ownCopy(root: RecordData): RecordData {
  const map = new Map<string, unknown>();
  ordered(root.family).forEach((value, key) => {
    if (value !== DELETED) map.set(key, value);
  });
  const fresh = new Family(map);
  const version = new RecordData(fresh, root.size, root.indexKeys);
  fresh.root = version;
  return version;
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

/** The value of `key` in this version, or {@link ABSENT}. */
export function recordGet(data: RecordData, key: string): unknown {
  const slot = slotOf(readable(data).family.map, key);
  return slot === DELETED ? ABSENT : slot;
}

/** `data` with `key` set to `value` (the same object when the value was already there). */
export function recordSet(data: RecordData, key: string, value: unknown): RecordData {
  const base = readable(data);
  const present = slotOf(base.family.map, key);
  if (present === value) return data;
  if (present !== ABSENT && present !== DELETED) return change(base, key, value, present, base.size, base.indexKeys, undefined);
  const indexKeys = isIndexKey(key) ? base.indexKeys + 1 : base.indexKeys;
  let seq: number | undefined;
  if (present === DELETED) {
    // A deleted key set again takes the last place: the family numbers places from now on.
    const family = base.family;
    if (family.seqs === undefined) numberPlaces(family);
    seq = ++family.nextSeq;
  }
  return change(base, key, value, present, base.size + 1, indexKeys, seq);
}

/**
 * `data` with `key`, whose value in `data` is `present`, set to `value`: {@link recordSet} without
 * looking the key up, for a caller that read `present` from `data` itself.
 */
export function recordReplace(data: RecordData, key: string, present: unknown, value: unknown): RecordData {
  if (present === value) return data;
  const base = readable(data);
  return change(base, key, value, present, base.size, base.indexKeys, undefined);
}

/** `data` without `key` (the same object when it had none). */
export function recordDelete(data: RecordData, key: string): RecordData {
  const base = readable(data);
  const present = slotOf(base.family.map, key);
  if (present === ABSENT || present === DELETED) return data;
  const indexKeys = isIndexKey(key) ? base.indexKeys - 1 : base.indexKeys;
  return change(base, key, DELETED, present, base.size - 1, indexKeys, undefined);
}

/** The version after `key`, holding `present`, took `slot` (at place `seq`, if given) in `base`, the root of its family. */
function change(base: RecordData, key: string, slot: unknown, present: unknown, size: number, indexKeys: number, seq: number | undefined): RecordData {
  const family = base.family;
  // Bounds what an old version can hold alive, and the deleted keys the map keeps: a fresh map.
  if (++family.versions > 2 * family.map.size + SHORT_WALK) {
    // It keeps no tombstone: a key deleted now is simply gone from it, one set again simply new.
    const fresh = ownCopy(base).family;
    const next = new RecordData(fresh, size, indexKeys);
    write(fresh, key, slot === DELETED ? ABSENT : slot, undefined);
    fresh.root = next;
    return next;
  }
  const next = new RecordData(family, size, indexKeys);
  base.next = next;
  base.key = key;
  base.slot = present;
  base.slotSeq = family.seqs?.get(key);
  write(family, key, slot, seq);
  family.root = next;
  return next;
}

/** Own keys in the order a plain object would list them. Cached: do not change the array. */
export function recordKeys(data: RecordData): string[] {
  if (data.keys !== undefined) return data.keys;
  const keys: string[] = [];
  const indices: string[] = [];
  const hasIndices = data.indexKeys > 0;
  ordered(readable(data).family).forEach((value, key) => {
    if (value === DELETED) return;
    if (hasIndices && isIndexKey(key)) indices.push(key);
    else keys.push(key);
  });
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
  const map = new Map<string, unknown>();
  let indexKeys = 0;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    map.set(key, (object as Record<string, unknown>)[key]);
    if (isIndexKey(key)) indexKeys++;
  }
  const family = new Family(map);
  const data = new RecordData(family, keys.length, indexKeys);
  family.root = data;
  // Insertion order equals listing order only without index keys (objects list those first).
  if (indexKeys === 0) data.keys = keys;
  return data;
}

/** Calls `visit` with every entry, in the order a plain object lists its keys. */
export function forEachEntry(data: RecordData, visit: (key: string, value: unknown) => void): void {
  const map = ordered(readable(data).family);
  if (data.indexKeys === 0) {
    map.forEach((value, key) => {
      if (value !== DELETED) visit(key, value);
    });
    return;
  }
  for (const key of recordKeys(data)) visit(key, map.get(key));
}

/** The record's values in `Object.values` order, without a trap per key. Cached: do not change the array. */
export function recordValues(data: RecordData): unknown[] {
  if (data.values !== undefined) return data.values;
  const values: unknown[] = [];
  forEachEntry(data, (_key, value) => values.push(value));
  return (data.values = values);
}

/**
 * The data behind persistent records (`persistentRecord.ts`): a hash array mapped trie (32-way,
 * bitmap nodes, path copying) from key to entry, and a persistent vector of the keys in insertion
 * order. Versions are immutable once their draft has finished; a draft changes the nodes it made
 * itself in place (its `edit`), as Clojure's transients do.
 */

/** A plain object with at least this many keys becomes a persistent record when a draft changes it. */
export const RECORD_THRESHOLD = 64;

/** Owner of the nodes a draft may change in place (nodes made by that draft); `null`: copy always. */
export type Edit = object | null;

export class Entry {
  constructor(
    readonly key: string,
    readonly hash: number,
    readonly value: unknown,
    /** Position in insertion order. */
    readonly seq: number,
  ) {}
}

class Branch {
  constructor(
    public bitmap: number,
    public nodes: Array<Entry | Branch | Collision>,
    readonly edit: Edit,
  ) {}
}

/** Entries whose 32-bit hashes are equal. */
class Collision {
  constructor(
    readonly hash: number,
    public entries: Entry[],
    readonly edit: Edit,
  ) {}
}

class VNode {
  constructor(
    public items: unknown[],
    readonly edit: Edit,
  ) {}
}

/** One version of a record. Immutable once its draft has finished. */
export class RecordData {
  /** Own keys in `Object.keys` order, built when first asked for. */
  keys: string[] | undefined;
  /** Values in `Object.values` order, built when first asked for. */
  values: unknown[] | undefined;
  constructor(
    readonly root: Branch,
    readonly size: number,
    /** Keys by insertion position; deleted ones leave holes until the vector is rebuilt. */
    readonly order: VNode,
    readonly shift: number,
    /** Next insertion position. */
    readonly length: number,
    /** How many keys are array indices (`"0"`, `"17"`), which objects list first. */
    readonly indexKeys: number,
  ) {}
}

const EMPTY = new RecordData(new Branch(0, [], null), 0, new VNode([], null), 0, 0, 0);

// --- the trie ---------------------------------------------------------------------------------

/** FNV-1a with a final avalanche: the trie takes 5 bits per level from the low end. */
function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function popcount(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  x = (x + (x >>> 4)) & 0x0f0f0f0f;
  return Math.imul(x, 0x01010101) >>> 24;
}

function lookup(root: Branch, key: string): Entry | undefined {
  const hash = hashKey(key);
  let node: Branch = root;
  for (let shift = 0; ; shift += 5) {
    const bit = 1 << ((hash >>> shift) & 31);
    if ((node.bitmap & bit) === 0) return undefined;
    const child = node.nodes[popcount(node.bitmap & (bit - 1))]!;
    if (child instanceof Entry) return child.key === key ? child : undefined;
    if (child instanceof Branch) {
      node = child;
      continue;
    }
    for (const entry of child.entries) if (entry.key === key) return entry;
    return undefined;
  }
}

function editableBranch(node: Branch, edit: Edit): Branch {
  return edit !== null && node.edit === edit ? node : new Branch(node.bitmap, node.nodes.slice(), edit);
}

/** What a change did: the entry it replaced or removed, if any. */
interface Outcome {
  old: Entry | undefined;
}

/** Two entries under one slot: branches down to where their hashes differ (or a collision). */
function merge(a: Entry, b: Entry, shift: number, edit: Edit): Branch | Collision {
  if (shift > 30) return new Collision(a.hash, [a, b], edit);
  const ia = (a.hash >>> shift) & 31;
  const ib = (b.hash >>> shift) & 31;
  if (ia === ib) return new Branch(1 << ia, [merge(a, b, shift + 5, edit)], edit);
  return new Branch((1 << ia) | (1 << ib), ia < ib ? [a, b] : [b, a], edit);
}

function setIn(node: Branch, shift: number, entry: Entry, edit: Edit, out: Outcome): Branch {
  const bit = 1 << ((entry.hash >>> shift) & 31);
  const index = popcount(node.bitmap & (bit - 1));
  if ((node.bitmap & bit) === 0) {
    const copy = editableBranch(node, edit);
    copy.nodes.splice(index, 0, entry);
    copy.bitmap |= bit;
    return copy;
  }
  const child = node.nodes[index]!;
  let next: Entry | Branch | Collision;
  if (child instanceof Entry) {
    if (child.key === entry.key) {
      out.old = child;
      if (child.value === entry.value) return node;
      next = new Entry(entry.key, entry.hash, entry.value, child.seq);
    } else {
      next = merge(child, entry, shift + 5, edit);
    }
  } else if (child instanceof Branch) {
    next = setIn(child, shift + 5, entry, edit, out);
  } else {
    next = setInCollision(child, entry, edit, out);
  }
  if (next === child) return node;
  const copy = editableBranch(node, edit);
  copy.nodes[index] = next;
  return copy;
}

function setInCollision(node: Collision, entry: Entry, edit: Edit, out: Outcome): Collision {
  const at = node.entries.findIndex((e) => e.key === entry.key);
  if (at >= 0) {
    const old = node.entries[at]!;
    out.old = old;
    if (old.value === entry.value) return node;
    entry = new Entry(entry.key, entry.hash, entry.value, old.seq);
  }
  const copy = edit !== null && node.edit === edit ? node : new Collision(node.hash, node.entries.slice(), edit);
  if (at >= 0) copy.entries[at] = entry;
  else copy.entries.push(entry);
  return copy;
}

/** The node without `key`: a branch left with one entry collapses into it (except the root). */
function removeIn(node: Branch, shift: number, key: string, hash: number, edit: Edit, out: Outcome): Branch | Entry | undefined {
  const bit = 1 << ((hash >>> shift) & 31);
  if ((node.bitmap & bit) === 0) return node;
  const index = popcount(node.bitmap & (bit - 1));
  const child = node.nodes[index]!;
  let next: Entry | Branch | Collision | undefined;
  if (child instanceof Entry) {
    if (child.key !== key) return node;
    out.old = child;
    next = undefined;
  } else if (child instanceof Branch) {
    next = removeIn(child, shift + 5, key, hash, edit, out);
    if (next === child) return node;
  } else {
    const at = child.entries.findIndex((e) => e.key === key);
    if (at < 0) return node;
    out.old = child.entries[at];
    const rest = child.entries.filter((_, i) => i !== at);
    next = rest.length === 1 ? rest[0]! : new Collision(child.hash, rest, edit);
  }
  if (next === undefined) {
    if (shift > 0 && node.nodes.length === 2) {
      const other = node.nodes[1 - index]!;
      if (other instanceof Entry) return other;
    }
    if (shift > 0 && node.nodes.length === 1) return undefined;
    const copy = editableBranch(node, edit);
    copy.nodes.splice(index, 1);
    copy.bitmap &= ~bit;
    return copy;
  }
  if (next instanceof Entry && shift > 0 && node.nodes.length === 1) return next;
  const copy = editableBranch(node, edit);
  copy.nodes[index] = next;
  return copy;
}

// --- the order vector -------------------------------------------------------------------------

function vectorSet(root: VNode, shift: number, index: number, value: unknown, edit: Edit): { root: VNode; shift: number } {
  while (index >>> shift >= 32) {
    root = new VNode([root], edit);
    shift += 5;
  }
  const top = edit !== null && root.edit === edit ? root : new VNode(root.items.slice(), edit);
  let node = top;
  for (let s = shift; s > 0; s -= 5) {
    const slot = (index >>> s) & 31;
    const child = node.items[slot] as VNode | undefined;
    const copy = child === undefined ? new VNode([], edit) : edit !== null && child.edit === edit ? child : new VNode(child.items.slice(), edit);
    node.items[slot] = copy;
    node = copy;
  }
  node.items[index & 31] = value;
  return { root: top, shift };
}

function forEachKey(node: VNode, shift: number, visit: (key: string) => void): void {
  if (shift === 0) {
    for (const item of node.items) if (item !== undefined) visit(item as string);
    return;
  }
  for (const child of node.items) if (child !== undefined) forEachKey(child as VNode, shift - 5, visit);
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
  return lookup(data.root, key);
}

const scratch: Outcome = { old: undefined };

/** `data` with `key` set to `value` (the same object when the value was already there). */
export function recordSet(data: RecordData, key: string, value: unknown, edit: Edit): RecordData {
  scratch.old = undefined;
  const root = setIn(data.root, 0, new Entry(key, hashKey(key), value, data.length), edit, scratch);
  const old = scratch.old as Entry | undefined;
  if (old !== undefined) return root === data.root ? data : new RecordData(root, data.size, data.order, data.shift, data.length, data.indexKeys);
  const order = vectorSet(data.order, data.shift, data.length, key, edit);
  return new RecordData(root, data.size + 1, order.root, order.shift, data.length + 1, data.indexKeys + (isIndexKey(key) ? 1 : 0));
}

/** `data` without `key` (the same object when it had none). */
export function recordDelete(data: RecordData, key: string, edit: Edit): RecordData {
  scratch.old = undefined;
  const root = removeIn(data.root, 0, key, hashKey(key), edit, scratch) as Branch;
  const old = scratch.old as Entry | undefined;
  if (old === undefined) return data;
  const order = vectorSet(data.order, data.shift, old.seq, undefined, edit);
  const next = new RecordData(root, data.size - 1, order.root, order.shift, data.length, data.indexKeys - (isIndexKey(key) ? 1 : 0));
  // Holes in the order vector outnumber the keys: rebuild it (amortised O(1) per deletion).
  const holes = next.length - next.size;
  return holes > 32 && holes > next.size ? rebuild(next) : next;
}

function rebuild(data: RecordData): RecordData {
  const edit = {};
  let fresh = EMPTY;
  forEachKey(data.order, data.shift, (key) => {
    fresh = recordSet(fresh, key, lookup(data.root, key)!.value, edit);
  });
  return fresh;
}

/** Own keys in the order a plain object would list them. Cached: do not change the array. */
export function recordKeys(data: RecordData): string[] {
  if (data.keys !== undefined) return data.keys;
  const keys: string[] = [];
  if (data.indexKeys === 0) {
    forEachKey(data.order, data.shift, (key) => keys.push(key));
  } else {
    const indices: string[] = [];
    forEachKey(data.order, data.shift, (key) => (isIndexKey(key) ? indices : keys).push(key));
    indices.sort((a, b) => Number(a) - Number(b));
    keys.unshift(...indices);
  }
  data.keys = keys;
  return keys;
}

/** A record holding `object`'s own enumerable string keys, in its order: built in one pass, not key by key. */
export function recordFromObject(object: object): RecordData {
  const keys = Object.keys(object);
  const entries = keys.map((key, seq) => new Entry(key, hashKey(key), (object as Record<string, unknown>)[key], seq));
  const root = buildBranch(entries, 0);
  // The order vector, bottom up: leaves of 32 keys, then parents of 32 nodes.
  let level: VNode[] = [];
  for (let i = 0; i < keys.length; i += 32) level.push(new VNode(keys.slice(i, i + 32), null));
  let shift = 0;
  while (level.length > 1) {
    const up: VNode[] = [];
    for (let i = 0; i < level.length; i += 32) up.push(new VNode(level.slice(i, i + 32), null));
    level = up;
    shift += 5;
  }
  let indexKeys = 0;
  for (const key of keys) if (isIndexKey(key)) indexKeys++;
  const data = new RecordData(root, keys.length, level[0] ?? new VNode([], null), shift, keys.length, indexKeys);
  if (indexKeys === 0) data.keys = keys;
  return data;
}

/** The branch holding `entries` (distinct keys), whose hashes agree below `shift`. */
function buildBranch(entries: readonly Entry[], shift: number): Branch {
  const buckets: Entry[][] = [];
  let bitmap = 0;
  for (const entry of entries) {
    const slot = (entry.hash >>> shift) & 31;
    bitmap |= 1 << slot;
    (buckets[slot] ??= []).push(entry);
  }
  const nodes: Array<Entry | Branch | Collision> = [];
  for (let slot = 0; slot < 32; slot++) {
    const bucket = buckets[slot];
    if (bucket === undefined) continue;
    if (bucket.length === 1) nodes.push(bucket[0]!);
    else if (shift + 5 > 30) nodes.push(new Collision(bucket[0]!.hash, bucket, null));
    else nodes.push(buildBranch(bucket, shift + 5));
  }
  return new Branch(bitmap, nodes, null);
}

/** Every entry, in insertion order (the trie walked once, no lookups). */
export function entriesInOrder(data: RecordData): Entry[] {
  const bySeq: Array<Entry | undefined> = new Array<Entry | undefined>(data.length);
  const walk = (node: Branch | Collision) => {
    const children = node instanceof Branch ? node.nodes : node.entries;
    for (const child of children) {
      if (child instanceof Entry) bySeq[child.seq] = child;
      else walk(child);
    }
  };
  walk(data.root);
  const entries: Entry[] = [];
  for (const entry of bySeq) if (entry !== undefined) entries.push(entry);
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


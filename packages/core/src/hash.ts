/**
 * Stable, fast, non-cryptographic hashing: command payload fingerprints (to tell a retried command
 * from a different command reusing an id) and deterministic entity ids derived from command ids.
 */

/** 53-bit string hash (cyrb53). */
export function hashString(input: string, seed = 0): number {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < input.length; i++) {
    const ch = input.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * JSON with object keys sorted, so equal values always serialise to the same text. Fingerprints
 * of this text are stored with every command, so the text must never change: object members whose
 * value is undefined are left out, array holes become empty (`[1,,2]`), other undefined array
 * items `null`.
 *
 * Most values (a payload that came out of JSON.parse, written with its keys in order) are already
 * canonical as `JSON.stringify` writes them: that is checked with a walk that builds nothing, and
 * the native serialiser writes the text. Anything else — keys out of order, holes, functions,
 * class instances — is written by hand in one pass.
 */
export function canonicalJson(value: unknown): string {
  return stringifiesCanonically(value, 0) ? (JSON.stringify(value) ?? 'null') : canonicalJsonByHand(value);
}

/** Deeper than this, the check gives up and the value is written by hand (which has no such limit). */
const MAX_CHECK_DEPTH = 64;

/**
 * True when `JSON.stringify(value)` is exactly the canonical text: every object a plain one with
 * its keys in sorted order and no member that JSON.stringify would drop or turn into something else
 * (undefined, a function, a symbol); arrays without holes or such items; no bigint.
 */
function stringifiesCanonically(value: unknown, depth: number): boolean {
  if (value === null) return true;
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (depth > MAX_CHECK_DEPTH) return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (!(i in value) || value[i] === undefined || !stringifiesCanonically(value[i], depth + 1)) return false;
    }
    return true;
  }
  const prototype = Object.getPrototypeOf(value) as unknown;
  if (prototype !== Object.prototype && prototype !== null) return false;
  let previous: string | undefined;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return false;
    if (previous !== undefined && previous > key) return false;
    previous = key;
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined || !stringifiesCanonically(item, depth + 1)) return false;
  }
  return true;
}

/** The canonical text of any value, built in one pass without the arrays a map/filter/sort/join chain allocates. */
function canonicalJsonByHand(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      if (i in value) out += canonicalJsonByHand(value[i]);
    }
    return `${out}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let out = '{';
  for (const key of keys) {
    const item = record[key];
    if (item === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${canonicalJsonByHand(item)}`;
  }
  return `${out}}`;
}

/** A fingerprint of a value's content, as a short base-36 string. */
export function fingerprint(value: unknown): string {
  return toBase36(hashString(canonicalJson(value)));
}

const BASE36_DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * `n.toString(36)` for a safe non-negative integer, in a third of the time (V8 takes a general
 * floating-point path for any radix but 10): every step is exact below 2^53.
 */
export function toBase36(n: number): string {
  let out = '';
  do {
    const digit = n % 36;
    out = BASE36_DIGITS[digit]! + out;
    n = (n - digit) / 36;
  } while (n > 0);
  return out;
}

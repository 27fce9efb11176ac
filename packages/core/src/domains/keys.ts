import * as z from 'zod';
import { readKey } from '../draft.js';

/**
 * Ids of tasks, sessions and focused terminal sessions: 1–128 characters of `A-Z a-z 0-9 _ . : -`
 * (what `ctx.newId` produces, and what fits in a stream key, a URL segment or a file name).
 */
export const ENTITY_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * States are plain objects (they travel as JSON snapshots), so a key that names a member of
 * `Object.prototype` would read as an existing entry or, for `__proto__`, replace the prototype.
 */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function isSafeKey(key: string): boolean {
  return !RESERVED_KEYS.has(key);
}

const reservedMessage = { message: '"__proto__", "constructor" and "prototype" are reserved' };

export const entityIdSchema = z.string().regex(ENTITY_ID_PATTERN, 'ids are 1–128 characters of A-Z a-z 0-9 _ . : -').refine(isSafeKey, reservedMessage);

/** A record key of any text (such as an absolute path), bounded and never a reserved name. */
export function recordKeySchema(maxLength: number) {
  return z.string().min(1).max(maxLength).refine(isSafeKey, reservedMessage);
}

/**
 * An entry of a record by key, or undefined: `own(state.tasks, id)`, in `decide` and in `evolve`.
 * It never answers with something inherited (`own(record, 'constructor')` is undefined, where
 * `record['constructor']` is `Object`), and on a large record (a persistent record, or a draft of
 * one) it looks the key up directly, where `record[key]` goes through a Proxy trap that interns each
 * fresh key in the engine's table of strings (about 0.3 µs a read on 100,000 entries).
 *
 * How: records are plain JSON objects, whose entries are never functions, and everything they inherit is
 * one (`__proto__` aside, refused first), so an entry is inherited exactly when it is a function.
 * Checked that way rather than with `Object.hasOwn`, which on a draft goes through the proxy's
 * `getOwnPropertyDescriptor` trap and its invariant checks, or by reading the key on
 * `Object.prototype`, which makes the engine look a fresh key up in its table of interned strings:
 * on a board of 100,000 tasks either one cost more than the rest of the lookup. For the same reason
 * the entry is read with `readKey`, which hands the key to no Proxy trap.
 */
export function own<T>(record: Record<string, T>, key: string): T | undefined {
  if (key === '__proto__') return undefined;
  const value = readKey(record, key) as T;
  return typeof value === 'function' ? undefined : value;
}

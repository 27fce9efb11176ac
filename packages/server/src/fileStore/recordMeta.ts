import type { StoredRefusal } from '../eventStore.js';
import type { CommitMeta } from './logState.js';
import { LogInconsistency } from './logState.js';

/**
 * Shape checks of the JSON parts of records. A record that passed its checksum was written by this
 * store, so a bad shape means a bug or a format this version does not know: reported, never guessed.
 */

export interface HeaderMeta {
  format: number;
  storeId: string;
  kind: 'segment' | 'base';
  seq: number;
  durability?: 'fsync' | 'os';
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const isVersion = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;
/** The optional last element of a command record: absent, or a refusal `{code, message, data?}`. */
const isRefusalOrAbsent = (value: unknown): value is StoredRefusal | undefined =>
  value === undefined || (isObject(value) && typeof value.code === 'string' && typeof value.message === 'string');

function fail(what: string): never {
  throw new LogInconsistency(`malformed ${what} record`);
}

export function headerMeta(value: unknown): HeaderMeta {
  if (
    !isObject(value) ||
    typeof value.format !== 'number' ||
    typeof value.storeId !== 'string' ||
    (value.kind !== 'segment' && value.kind !== 'base') ||
    !isVersion(value.seq) ||
    (value.durability !== undefined && value.durability !== 'fsync' && value.durability !== 'os')
  ) {
    fail('header');
  }
  return value as unknown as HeaderMeta;
}

export function commitMeta(value: unknown): CommitMeta {
  if (!isObject(value) || typeof value.s !== 'string' || !isVersion(value.v) || !isVersion(value.n) || !Array.isArray(value.c)) fail('commit');
  for (const entry of value.c as unknown[]) {
    if (!Array.isArray(entry) || typeof entry[0] !== 'string' || typeof entry[1] !== 'string' || !isVersion(entry[2]) || !isRefusalOrAbsent(entry[3])) {
      fail('commit');
    }
  }
  return value as unknown as CommitMeta;
}

export function compactMeta(value: unknown): { s: string; before: number } {
  if (!isObject(value) || typeof value.s !== 'string' || !isVersion(value.before)) fail('compact');
  return value as { s: string; before: number };
}

export function streamMeta(value: unknown): { s: string; head: number; oldest: number } {
  if (!isObject(value) || typeof value.s !== 'string' || !isVersion(value.head) || !isVersion(value.oldest)) fail('stream');
  return value as { s: string; head: number; oldest: number };
}

export function eventsMeta(value: unknown): { s: string; v: number; n: number } {
  if (!isObject(value) || typeof value.s !== 'string' || !isVersion(value.v) || !isVersion(value.n)) fail('events');
  return value as { s: string; v: number; n: number };
}

export type CommandsEntry = [string, string, string, number] | [string, string, string, number, StoredRefusal];

export function commandsMeta(value: unknown): { c: CommandsEntry[] } {
  if (!isObject(value) || !Array.isArray(value.c)) fail('commands');
  for (const entry of value.c as unknown[]) {
    if (
      !Array.isArray(entry) ||
      typeof entry[0] !== 'string' ||
      typeof entry[1] !== 'string' ||
      typeof entry[2] !== 'string' ||
      !isVersion(entry[3]) ||
      !isRefusalOrAbsent(entry[4])
    ) {
      fail('commands');
    }
  }
  return value as { c: CommandsEntry[] };
}

export function snapshotMeta(value: unknown): { s: string; version: number } {
  if (!isObject(value) || typeof value.s !== 'string' || !isVersion(value.version)) fail('snapshot');
  return value as { s: string; version: number };
}

export function endMeta(value: unknown): { streams: number; commands: number } {
  if (!isObject(value) || !isVersion(value.streams) || !isVersion(value.commands)) fail('end');
  return value as { streams: number; commands: number };
}

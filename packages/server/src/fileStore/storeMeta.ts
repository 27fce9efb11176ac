import { randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptLogError } from './CorruptLogError.js';
import { LOCK_FILE } from './directoryLock.js';
import { isTemporaryName, writeFileAtomic } from './fsUtil.js';
import { FORMAT_VERSION } from './records.js';

export const STORE_META_FILE = 'store.json';

/** `store.json`: written once at creation (atomically), rewritten only to rotate the epoch. */
export interface StoreMeta {
  format: number;
  /** Permanent identity of the directory's log; every log file's header names it. */
  storeId: string;
  /** The store's epoch (EventStore.epoch): rotated when recovery lost writes clients may have seen. */
  epoch: string;
  createdAt: string;
  /** Why and when the epoch last changed, if it did. */
  epochRotated?: { at: string; reason: string };
}

/** Reads `store.json`, or undefined when the directory holds no store yet. */
export async function readStoreMeta(directory: string): Promise<StoreMeta | undefined> {
  const path = join(directory, STORE_META_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let meta: Partial<StoreMeta>;
  try {
    meta = JSON.parse(text) as Partial<StoreMeta>;
  } catch (error) {
    throw new CorruptLogError(path, 0, `unreadable store metadata: ${(error as Error).message}`);
  }
  if (typeof meta.storeId !== 'string' || typeof meta.epoch !== 'string' || typeof meta.format !== 'number') {
    throw new CorruptLogError(path, 0, 'store metadata without format, storeId or epoch');
  }
  if (meta.format !== FORMAT_VERSION) {
    throw new Error(`${path}: store format ${meta.format}; this version of Lockstep reads format ${FORMAT_VERSION}`);
  }
  return meta as StoreMeta;
}

/** Creates `store.json` in a directory that holds nothing else (but our lock). */
export async function createStoreMeta(directory: string): Promise<StoreMeta> {
  const strangers = (await readdir(directory)).filter((name) => name !== LOCK_FILE && !isTemporaryName(name));
  if (strangers.length > 0) {
    throw new Error(`${directory} is not empty and holds no Lockstep store (no ${STORE_META_FILE}); give an empty or new directory`);
  }
  const meta: StoreMeta = { format: FORMAT_VERSION, storeId: randomUUID(), epoch: randomUUID(), createdAt: new Date().toISOString() };
  await writeStoreMeta(directory, meta);
  return meta;
}

export async function writeStoreMeta(directory: string, meta: StoreMeta): Promise<void> {
  await writeFileAtomic(join(directory, STORE_META_FILE), `${JSON.stringify(meta, null, 2)}\n`);
}

/** A new epoch: clients that cached state of the old one start over from a snapshot. */
export async function rotateEpoch(directory: string, meta: StoreMeta, reason: string): Promise<StoreMeta> {
  const next: StoreMeta = { ...meta, epoch: randomUUID(), epochRotated: { at: new Date().toISOString(), reason } };
  await writeStoreMeta(directory, next);
  return next;
}

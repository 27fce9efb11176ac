import { randomUUID } from 'node:crypto';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PRIVATE_FILE_MODE } from './privateModes.js';
import { StoreLockedError } from './StoreLockedError.js';

export const LOCK_FILE = 'lock';
/** A lock file that cannot be parsed and is older than this is a crash leftover of its own creation. */
const UNREADABLE_LOCK_GRACE_MS = 10_000;

interface LockContent {
  pid: number;
  host: string;
  since: string;
  nonce: string;
}

/** Directories locked by this process: a second open in the same process fails without racing. */
const lockedHere = new Set<string>();

/**
 * The ownership of a data directory: the file `<dir>/lock`, created exclusively (`wx`), holding the
 * owner's pid, host and a nonce. A lock whose pid is not alive on this host is stale (its owner was
 * killed) and is taken over. See docs/storage.md, "One owner per directory".
 */
export class DirectoryLock {
  private constructor(
    readonly directory: string,
    readonly path: string,
    readonly content: LockContent,
    /** The pid of a stale lock this one replaced, if any. */
    readonly replacedStalePid: number | undefined,
  ) {}

  static async acquire(directory: string): Promise<DirectoryLock> {
    if (lockedHere.has(directory)) {
      throw new StoreLockedError(directory, { pid: process.pid, host: hostname(), since: 'earlier' });
    }
    const path = join(directory, LOCK_FILE);
    const content: LockContent = { pid: process.pid, host: hostname(), since: new Date().toISOString(), nonce: randomUUID() };
    let replaced: number | undefined;
    // Two rounds: a stale lock is removed in the first and ours created in the second.
    for (let round = 0; round < 3; round++) {
      try {
        const handle = await open(path, 'wx', PRIVATE_FILE_MODE);
        try {
          // Not fsynced: after a machine crash its pid is dead anyway (or the file empty: stale too).
          await handle.writeFile(`${JSON.stringify(content)}\n`);
        } finally {
          await handle.close();
        }
        // Whoever removed a stale lock at the same moment as we did could have removed ours: check.
        const check = await readLock(path);
        if (check?.nonce !== content.nonce) throw new StoreLockedError(directory, check);
        lockedHere.add(directory);
        return new DirectoryLock(directory, path, content, replaced);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const existing = await readLock(path);
      if (existing === undefined) {
        // Being written by another opener right now, or a leftover of a crash during that write.
        const age = await stat(path).then(
          (info) => Date.now() - info.mtimeMs,
          () => 0,
        );
        if (age < UNREADABLE_LOCK_GRACE_MS) throw new StoreLockedError(directory, undefined);
        await unlinkIfSame(path, undefined);
        continue;
      }
      if (existing.host !== hostname() || existing.pid === process.pid || isAlive(existing.pid)) {
        throw new StoreLockedError(directory, existing);
      }
      replaced = existing.pid;
      await unlinkIfSame(path, existing.nonce);
    }
    throw new StoreLockedError(directory, await readLock(path));
  }

  /** Gives the directory up (only if the lock file is still ours). */
  async release(): Promise<void> {
    lockedHere.delete(this.directory);
    const existing = await readLock(this.path);
    if (existing?.nonce === this.content.nonce) await unlink(this.path).catch(() => {});
  }
}

async function readLock(path: string): Promise<LockContent | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as Partial<LockContent>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return undefined;
    return { pid: parsed.pid, host: parsed.host, since: String(parsed.since ?? 'unknown'), nonce: String(parsed.nonce ?? '') };
  } catch {
    return undefined;
  }
}

/** Removes the lock file only if it is still the one we judged stale. */
async function unlinkIfSame(path: string, nonce: string | undefined): Promise<void> {
  const current = await readLock(path);
  if (current?.nonce !== nonce) return;
  await unlink(path).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') throw error;
  });
}

/** Whether a process with this pid exists (EPERM: it exists, owned by someone else). */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

import type { Dirent } from 'node:fs';
import { chmod, lstat, mkdir, readdir } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Modes of everything the file store creates: only the owner may read, write or enter
 * (docs/storage.md, "Files are private"). They are passed to `open` and `mkdir`, and a umask can
 * only remove bits, never add them.
 */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIRECTORY_MODE = 0o700;

/** Whether a mode gives the group or others any access. */
export function isLoose(mode: number): boolean {
  return (mode & 0o077) !== 0;
}

/** Windows has no Unix modes: Node maps them to a read-only flag at most. */
const HAS_MODES = process.platform !== 'win32';

/**
 * Creates a directory (and missing parents) with mode 0700; what it creates is set to exactly 0700,
 * whatever the umask. An existing directory is tightened only with `tightenExisting`: its group and
 * other bits are removed, its owner bits kept.
 */
export async function makePrivateDirectory(path: string, options: { tightenExisting: boolean }): Promise<{ created: boolean; tightened: boolean }> {
  const first = await mkdir(path, { recursive: true, mode: PRIVATE_DIRECTORY_MODE });
  if (first !== undefined) {
    if (HAS_MODES) await chmod(path, PRIVATE_DIRECTORY_MODE);
    return { created: true, tightened: false };
  }
  if (!options.tightenExisting) return { created: false, tightened: false };
  return { created: false, tightened: await tightenPath(path) };
}

/** Removes group and other access from a file or directory (not following a symlink); answers whether it had any. */
export async function tightenPath(path: string): Promise<boolean> {
  if (!HAS_MODES) return false;
  const info = await lstat(path);
  if (info.isSymbolicLink() || !isLoose(info.mode)) return false;
  await chmod(path, info.mode & 0o700);
  return true;
}

/**
 * Removes group and other access from a file the store has open (written by an older version, which
 * left files 0644). `mode` comes from a `stat` the caller made anyway, so a private file costs nothing.
 */
export async function tightenOpenFile(handle: FileHandle, mode: number): Promise<void> {
  if (HAS_MODES && isLoose(mode)) await handle.chmod(mode & 0o700);
}

/**
 * Makes the entries of a data directory's root private (`store.json`, `log/`, `snapshots/`,
 * `repair-*` backups) — a lstat each, from the listing the open makes anyway. The files of a directory
 * that was open to others are tightened too, except where the store tightens them as it opens them
 * (`skipContents`: the log and the snapshots).
 */
export async function tightenEntries(directory: string, entries: readonly Dirent[], skipContents: ReadonlySet<string>): Promise<void> {
  if (!HAS_MODES) return;
  for (const entry of entries) {
    if (!entry.isFile() && !entry.isDirectory()) continue;
    const path = join(directory, entry.name);
    const tightened = await tightenPath(path);
    if (tightened && entry.isDirectory() && !skipContents.has(entry.name)) {
      await tightenEntries(path, await readdir(path, { withFileTypes: true }), new Set());
    }
  }
}

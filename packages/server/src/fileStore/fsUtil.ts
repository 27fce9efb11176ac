import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { PRIVATE_FILE_MODE } from './privateModes.js';

/** Makes a directory's entries (created, renamed, removed files) durable. */
export async function fsyncDirectory(path: string): Promise<void> {
  // Windows cannot open a directory for syncing; NTFS journals the metadata of a rename itself.
  if (process.platform === 'win32') return;
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` atomically and durably: write a temporary file, fsync it, rename it over `path`,
 * fsync the directory. A crash leaves the old file or the new one, never a mix; the temporary file
 * of an interrupted write (`*.tmp-*`) is removed when the store opens. The new file is private
 * (0600, see {@link PRIVATE_FILE_MODE}) from its creation on, whatever the old one's mode was.
 *
 * `@lockstep/client/persist-file` has its own copy (`persistence/fileStorage.ts`: the client may not
 * depend on the server, and core has no Node-only part): a fix to one belongs in the other.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temporary = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const handle = await open(temporary, 'wx', PRIVATE_FILE_MODE);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(temporary).catch(() => {});
    throw error;
  }
  await handle.close();
  await rename(temporary, path);
  await fsyncDirectory(dirname(path));
}

/** Whether a file name is a temporary file of {@link writeFileAtomic} or of a log rewrite. */
export function isTemporaryName(name: string): boolean {
  return /\.tmp(-[0-9a-f]+)?$/.test(name);
}

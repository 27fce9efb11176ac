import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

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
 * of an interrupted write (`*.tmp-*`) is removed when the store opens.
 */
export async function writeFileAtomic(path: string, data: Buffer | string): Promise<void> {
  const temporary = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const handle = await open(temporary, 'wx');
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

import { dirname } from 'node:path';
import { writeFileAtomic } from './fileStore/fsUtil.js';
import { makePrivateDirectory } from './fileStore/privateModes.js';

/**
 * Writes a file only its owner can read (mode 0600), atomically and durably: a temporary file
 * created 0600, fsynced and renamed over `path`, so a reader never sees half of it and the data is
 * never readable by others, not even for a moment, whatever the umask. Missing parent directories
 * are created 0700; an existing parent is left as it is (it may be a home directory).
 *
 * For secrets a server keeps on disk, such as the token file of a hub:
 *
 * ```ts
 * await writePrivateFile(join(dataDirectory, 'token'), `${token}\n`);
 * ```
 *
 * A file that already exists is replaced, so it ends up 0600 even if it was not before.
 */
export async function writePrivateFile(path: string, data: string | Uint8Array): Promise<void> {
  await makePrivateDirectory(dirname(path), { tightenExisting: false });
  await writeFileAtomic(path, data);
}

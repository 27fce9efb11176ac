/**
 * `@lockstep/client/persist-file`: a client's storage in a folder, for Node (an IDE extension passes
 * its storage folder, a CLI a folder of its own). One file per record:
 *
 *     lockstep-client 1 <sha256 of the body, hex> <body bytes>\n
 *     <body: the record as JSON>
 *
 * Each file is replaced atomically (a temporary file, fsynced, renamed over it, the folder fsynced),
 * so a process killed at any moment leaves the old record or the new one. A file whose checksum or
 * length does not match, or whose container version is unknown, is ignored and reported — never
 * thrown. One client process uses a folder at a time (a `lock` file names its pid).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientStorage } from './clientStorage.js';
import { PersistenceError } from './PersistenceError.js';

export interface FileStorageOptions {
  /** The folder the records are kept in; created (0700) if missing. */
  directory: string;
}

const MAGIC = 'lockstep-client';
const CONTAINER_VERSION = 1;
const EXTENSION = '.lockstep';
const LOCK = 'lock';

/** A client's storage in a folder (Node only). */
export function fileStorage(options: FileStorageOptions): ClientStorage {
  return new FileStorage(options.directory);
}

class FileStorage implements ClientStorage {
  #locked = false;

  constructor(readonly directory: string) {}

  async load(): Promise<{ records: Map<string, unknown>; problems: Error[] }> {
    try {
      await mkdir(this.directory, { recursive: true, mode: 0o700 });
      await this.#lock();
      const records = new Map<string, unknown>();
      const problems: Error[] = [];
      for (const name of await readdir(this.directory)) {
        if (/\.tmp-[0-9a-f]+$/.test(name)) {
          // A write interrupted before its rename: the record it replaced is still whole.
          await unlink(join(this.directory, name)).catch(() => {});
          continue;
        }
        if (!name.endsWith(EXTENSION)) continue;
        const key = decodeURIComponent(name.slice(0, -EXTENSION.length));
        try {
          records.set(key, decodeRecord(await readFile(join(this.directory, name)), name));
        } catch (error) {
          problems.push(PersistenceError.from(error));
        }
      }
      return { records, problems };
    } catch (error) {
      throw PersistenceError.from(error);
    }
  }

  async save(changes: ReadonlyMap<string, unknown>): Promise<void> {
    try {
      for (const [key, value] of changes) {
        const path = join(this.directory, encodeURIComponent(key) + EXTENSION);
        if (value === undefined) await unlink(path).catch(ignoreMissing);
        else await writeAtomic(this.directory, path, encodeRecord(value));
      }
    } catch (error) {
      throw PersistenceError.from(error);
    }
  }

  async clear(): Promise<void> {
    try {
      for (const name of await readdir(this.directory).catch(() => [])) {
        if (name.endsWith(EXTENSION) || /\.tmp-[0-9a-f]+$/.test(name)) await unlink(join(this.directory, name)).catch(ignoreMissing);
      }
      await syncDirectory(this.directory);
    } catch (error) {
      throw PersistenceError.from(error);
    }
  }

  async close(): Promise<void> {
    if (!this.#locked) return;
    this.#locked = false;
    await unlink(join(this.directory, LOCK)).catch(() => {});
  }

  /** Takes the folder for this process, unless a live process holds it. */
  async #lock(): Promise<void> {
    const path = join(this.directory, LOCK);
    const holder = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder !== process.pid && isAlive(holder)) {
      throw new PersistenceError('LOCKED', `${this.directory} is in use by process ${holder}`);
    }
    await writeFile(path, `${process.pid}\n`, { mode: 0o600 });
    this.#locked = true;
  }
}

function encodeRecord(value: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(value), 'utf8');
  const header = `${MAGIC} ${CONTAINER_VERSION} ${createHash('sha256').update(body).digest('hex')} ${body.length}\n`;
  return Buffer.concat([Buffer.from(header, 'latin1'), body]);
}

function decodeRecord(data: Buffer, name: string): unknown {
  const newline = data.indexOf(10);
  const header = newline < 0 ? [] : data.subarray(0, newline).toString('latin1').split(' ');
  if (header[0] !== MAGIC || header.length !== 4) throw new PersistenceError('CORRUPT', `${name}: not a Lockstep client record`);
  if (header[1] !== String(CONTAINER_VERSION))
    throw new PersistenceError('UNSUPPORTED_FORMAT', `${name}: container version ${header[1]} is not known to this release`);
  const body = data.subarray(newline + 1);
  if (body.length !== Number(header[3]) || createHash('sha256').update(body).digest('hex') !== header[2]) {
    throw new PersistenceError('CORRUPT', `${name}: checksum mismatch (a damaged file)`);
  }
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch (error) {
    throw new PersistenceError('CORRUPT', `${name}: not JSON`, { cause: error });
  }
}

/**
 * The same atomic replace as the hub's `writeFileAtomic` (`@lockstep/server`, `fileStore/fsUtil.ts`),
 * written twice on purpose: the client may not depend on the server, and `@lockstep/core` compiles
 * without Node types for the browser, so there is no package both could share it from without a new
 * Node-only package or subpath (see docs/decisions.md). A fix to one belongs in the other.
 */
async function writeAtomic(directory: string, path: string, data: Buffer): Promise<void> {
  const temporary = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const handle = await open(temporary, 'wx', 0o600);
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
  await syncDirectory(directory);
}

async function syncDirectory(directory: string): Promise<void> {
  // Windows cannot open a directory for syncing; NTFS journals a rename itself.
  if (process.platform === 'win32') return;
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

function ignoreMissing(error: unknown): void {
  if ((error as { code?: unknown }).code !== 'ENOENT') throw error;
}

import type { FileHandle } from 'node:fs/promises';
import { open, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { fsyncDirectory } from './fsUtil.js';
import { PRIVATE_FILE_MODE } from './privateModes.js';
import { FORMAT_VERSION, RecordType, encodeJsonRecord } from './records.js';

export type LogFileKind = 'segment' | 'base';

/** `0000000000000007.log` (segment 7) or `0000000000000007.base` (everything up to segment 7). */
export function logFileName(kind: LogFileKind, seq: number): string {
  return `${String(seq).padStart(16, '0')}.${kind === 'segment' ? 'log' : 'base'}`;
}

export function parseLogFileName(name: string): { kind: LogFileKind; seq: number } | undefined {
  const match = /^(\d{16})\.(log|base)$/.exec(name);
  if (!match) return undefined;
  return { kind: match[2] === 'log' ? 'segment' : 'base', seq: Number(match[1]) };
}

/**
 * One open file of the log. Readers hold a reference while they read; a file retired by a rewrite
 * is unlinked at once and its handle closed when the last reader is done.
 */
export class LogFile {
  refs = 0;
  #retired = false;
  #closed = false;

  constructor(
    readonly kind: LogFileKind,
    readonly seq: number,
    public path: string,
    readonly handle: FileHandle,
    /** Bytes of whole records (the append position of the active segment). */
    public size: number,
  ) {}

  get name(): string {
    return logFileName(this.kind, this.seq);
  }

  static pathOf(directory: string, kind: LogFileKind, seq: number): string {
    return join(directory, logFileName(kind, seq));
  }

  acquire(): void {
    this.refs++;
  }

  release(): void {
    this.refs--;
    if (this.#retired && this.refs === 0) void this.close();
  }

  /** Removes the file; its handle stays usable for readers holding a reference. */
  async retire(): Promise<void> {
    this.#retired = true;
    await unlink(this.path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    if (this.refs === 0) await this.close();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.handle.close().catch(() => {});
  }
}

/** Creates a log file (0600) with its header record, durable (file and directory entry) before it is used. */
export async function createLogFile(
  directory: string,
  kind: LogFileKind,
  seq: number,
  header: { storeId: string; durability?: 'fsync' | 'os' },
  path = LogFile.pathOf(directory, kind, seq),
): Promise<LogFile> {
  const handle = await open(path, 'wx+', PRIVATE_FILE_MODE);
  try {
    const record = encodeJsonRecord(RecordType.Header, {
      format: FORMAT_VERSION,
      storeId: header.storeId,
      kind,
      seq,
      ...(header.durability ? { durability: header.durability } : {}),
    });
    await handle.write(record, 0, record.length, 0);
    await handle.datasync();
    await fsyncDirectory(directory);
    return new LogFile(kind, seq, path, handle, record.length);
  } catch (error) {
    await handle.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw error;
  }
}

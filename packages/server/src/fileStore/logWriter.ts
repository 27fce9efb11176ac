import type { FileHandle } from 'node:fs/promises';
import type { LogFile } from './logFile.js';

export type Durability = 'fsync' | 'os';

interface WriteOp {
  record: Buffer;
  /** Called in log order once the record is as durable as promised, before anyone is answered. */
  onWritten(file: LogFile, offset: number): void;
  resolve(): void;
  reject(error: unknown): void;
}

interface ExclusiveOp {
  run(): Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

/**
 * The only writer of the active segment, with group commit: every record handed over while a write
 * (and its fsync) is in flight waits, and all of them go out in the next write — one `writev` and
 * one `fdatasync` for the lot — and are answered together once it is durable. A record handed over
 * while the writer is idle starts a write at the next microtask, so records handed over in the same
 * tick share it too.
 *
 * A failed write or fsync stops the writer for good: after a failed fsync the kernel may have dropped
 * the dirty pages, so what is on disk is unknown and only a reopen (which reads the disk) can tell.
 */
export class LogWriter {
  #queue: Array<WriteOp | ExclusiveOp> = [];
  #running = false;
  #failure: Error | undefined;
  /** Number of writes (batches) and records written, for tests and benchmarks. */
  readonly stats = { writes: 0, records: 0 };

  constructor(
    public active: LogFile,
    readonly durability: Durability,
    private readonly describe: string,
    /** After each batch is answered. */
    private readonly onBatch: () => void,
  ) {}

  get failure(): Error | undefined {
    return this.#failure;
  }

  write(record: Buffer, onWritten: (file: LogFile, offset: number) => void): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ record, onWritten, resolve, reject });
      this.#kick();
    });
  }

  /** Runs `run` alone, between two writes, after everything handed over before it. */
  exclusive(run: () => Promise<void>): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ run, resolve, reject });
      this.#kick();
    });
  }

  #kick(): void {
    if (this.#running) return;
    this.#running = true;
    queueMicrotask(() => void this.#drain());
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const first = this.#queue[0]!;
      if ('run' in first) {
        this.#queue.shift();
        try {
          await first.run();
          first.resolve();
        } catch (error) {
          first.reject(error);
        }
        continue;
      }
      let count = 1;
      while (count < this.#queue.length && !('run' in this.#queue[count]!)) count++;
      const batch = this.#queue.splice(0, count) as WriteOp[];
      try {
        await this.#write(batch);
      } catch (error) {
        this.#fail(error, batch);
        break;
      }
      for (const op of batch) op.resolve();
      this.onBatch();
    }
    this.#running = false;
  }

  async #write(batch: WriteOp[]): Promise<void> {
    const file = this.active;
    const start = file.size;
    await writeAll(
      file.handle,
      batch.map((op) => op.record),
      start,
    );
    if (this.durability === 'fsync') await file.handle.datasync();
    let offset = start;
    for (const op of batch) {
      op.onWritten(file, offset);
      offset += op.record.length;
    }
    file.size = offset;
    this.stats.writes++;
    this.stats.records += batch.length;
  }

  #fail(cause: unknown, batch: WriteOp[]): void {
    const message = cause instanceof Error ? cause.message : String(cause);
    this.#failure = new Error(
      `${this.describe}: writing the log failed (${message}); the store stopped accepting writes — reopen it to recover what is on disk`,
      {
        cause,
      },
    );
    for (const op of [...batch, ...this.#queue]) op.reject(this.#failure);
    this.#queue = [];
  }
}

/** Writes every buffer at `position`, continuing after short writes. */
async function writeAll(handle: FileHandle, buffers: Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  while (pending.length > 0) {
    const total = pending.reduce((sum, buffer) => sum + buffer.length, 0);
    const { bytesWritten } = await handle.writev(pending, at);
    if (bytesWritten === total) return;
    if (bytesWritten <= 0) throw new Error(`short write at byte ${at}`);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
    pending = rest;
  }
}

import type { FileHandle } from 'node:fs/promises';
import { RECORD_HEADER_BYTES, RECORD_MAGIC, checkBody, checkHeader, type RecordType } from './records.js';

export interface ScannedRecord {
  offset: number;
  /** Bytes of the whole record, header included. */
  size: number;
  type: RecordType;
  /** Valid until the next call of `next` (the buffer is reused): parse it at once. */
  payload: Buffer;
}

export interface ScanProblem {
  offset: number;
  reason: string;
}

const CHUNK_BYTES = 1024 * 1024;

/** Reads a log file record by record through one buffer, verifying every checksum. */
export class RecordScanner {
  #buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  #start = 0;
  #end = 0;
  position = 0;

  constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  /** The next record, the problem at the current position, or undefined at the end of the file. */
  async next(): Promise<ScannedRecord | ScanProblem | undefined> {
    const offset = this.position;
    if (offset >= this.size) return undefined;
    const available = this.size - offset;
    await this.#ensure(offset, Math.min(RECORD_HEADER_BYTES, available));
    const header = checkHeader(this.#buffer, offset - this.#start, available);
    if (!header.ok) return { offset, reason: header.reason };
    await this.#ensure(offset, RECORD_HEADER_BYTES + header.length);
    const at = offset - this.#start;
    const bad = checkBody(this.#buffer, at, header.length);
    if (bad !== undefined) return { offset, reason: bad };
    const size = RECORD_HEADER_BYTES + header.length;
    this.position = offset + size;
    return { offset, size, type: header.type, payload: this.#buffer.subarray(at + RECORD_HEADER_BYTES, at + size) };
  }

  /** Makes bytes `[from, from + length)` of the file available in the buffer. */
  async #ensure(from: number, length: number): Promise<void> {
    if (from >= this.#start && from + length <= this.#end) return;
    if (this.#buffer.length < length) this.#buffer = Buffer.allocUnsafe(Math.max(length, CHUNK_BYTES));
    const want = Math.min(this.#buffer.length, this.size - from);
    let read = 0;
    while (read < want) {
      const { bytesRead } = await this.handle.read(this.#buffer, read, want - read, from + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    this.#start = from;
    this.#end = from + read;
    if (read < length) throw new Error(`short read at byte ${from} (${read} of ${length} bytes; the file shrank while being read)`);
  }

  /**
   * Whether any whole, valid record starts after `from` — which tells damage in the middle of the
   * log (good records follow) from a torn tail (nothing valid follows). Looks for the record magic
   * at every byte and verifies the checksum of each candidate.
   */
  async validRecordAfter(from: number): Promise<number | undefined> {
    const probe = new RecordScanner(this.handle, this.size);
    let chunkStart = from + 1;
    const window = Buffer.allocUnsafe(CHUNK_BYTES + RECORD_MAGIC.length - 1);
    while (chunkStart < this.size) {
      const want = Math.min(window.length, this.size - chunkStart);
      const { bytesRead } = await this.handle.read(window, 0, want, chunkStart);
      if (bytesRead === 0) return undefined;
      let index = window.subarray(0, bytesRead).indexOf(RECORD_MAGIC);
      while (index >= 0) {
        probe.position = chunkStart + index;
        const found = await probe.next();
        if (found !== undefined && 'payload' in found) return chunkStart + index;
        const next = window.subarray(0, bytesRead).indexOf(RECORD_MAGIC, index + 1);
        index = next;
      }
      if (chunkStart + bytesRead >= this.size) return undefined;
      // Overlap by magic length - 1 so a magic across two chunks is still found.
      chunkStart += bytesRead - (RECORD_MAGIC.length - 1);
    }
    return undefined;
  }
}

export function isProblem(value: ScannedRecord | ScanProblem): value is ScanProblem {
  return !('payload' in value);
}

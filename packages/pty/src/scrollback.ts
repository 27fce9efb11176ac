/** The scrollback kept per terminal unless configured otherwise: 1 MiB. */
export const DEFAULT_SCROLLBACK_BYTES = 1024 * 1024;

/** The smallest buffer a scrollback starts with; it doubles as output arrives, up to its capacity. */
const INITIAL_BYTES = 64 * 1024;

/**
 * The last `capacity` bytes of a terminal's output, addressed by absolute byte offsets: the first
 * byte the terminal ever wrote is offset 0, and offsets keep counting when old bytes are dropped.
 * `start` is the oldest offset still held, `end` the offset the next byte will get; everything in
 * `[start, end)` can be read back exactly.
 *
 * Memory grows with the output (doubling from 64 KiB) and never past `capacity`; from then on the
 * buffer is a ring and each write overwrites the oldest bytes.
 */
export class Scrollback {
  readonly capacity: number;
  #buffer: Buffer;
  #end = 0;
  /** One-entry cache of the last base64 read: caught-up viewers all ask for the same range. */
  #cached: { from: number; to: number; text: string } | undefined;

  constructor(capacity: number = DEFAULT_SCROLLBACK_BYTES) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new RangeError(`invalid scrollback capacity: ${capacity}`);
    this.capacity = capacity;
    this.#buffer = Buffer.allocUnsafe(Math.min(capacity, INITIAL_BYTES));
  }

  /** The oldest offset still held. */
  get start(): number {
    return Math.max(0, this.#end - this.capacity);
  }

  /** The offset of the next byte: the number of bytes ever written. */
  get end(): number {
    return this.#end;
  }

  /** Bytes currently held (`end - start`). */
  get size(): number {
    return this.#end - this.start;
  }

  write(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#grow(this.#end + bytes.length);
    const capacity = this.capacity;
    // Only the last `capacity` bytes of a write larger than the ring can survive it.
    const source = bytes.length > capacity ? bytes.subarray(bytes.length - capacity) : bytes;
    const offset = this.#end + (bytes.length - source.length);
    const at = offset % this.#buffer.length;
    const first = Math.min(source.length, this.#buffer.length - at);
    this.#buffer.set(source.subarray(0, first), at);
    if (first < source.length) this.#buffer.set(source.subarray(first), 0);
    this.#end += bytes.length;
  }

  /** A copy of the bytes `[from, to)`; throws unless the range is held. */
  read(from: number, to: number = this.#end): Buffer {
    this.#check(from, to);
    const [a, b] = this.#segments(from, to);
    return b ? Buffer.concat([a, b]) : Buffer.from(a);
  }

  /** The bytes `[from, to)` as base64; throws unless the range is held. */
  readBase64(from: number, to: number = this.#end): string {
    this.#check(from, to);
    const cached = this.#cached;
    if (cached && cached.from === from && cached.to === to) return cached.text;
    const [a, b] = this.#segments(from, to);
    const text = b ? Buffer.concat([a, b]).toString('base64') : a.toString('base64');
    this.#cached = { from, to, text };
    return text;
  }

  #check(from: number, to: number): void {
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < this.start || to > this.#end || from > to) {
      throw new RangeError(`bytes [${from}, ${to}) are not held (held: [${this.start}, ${this.#end}))`);
    }
  }

  /** The range as one or two views on the buffer (two when it wraps around). */
  #segments(from: number, to: number): [Buffer, Buffer?] {
    const size = this.#buffer.length;
    const at = from % size;
    const length = to - from;
    if (at + length <= size) return [this.#buffer.subarray(at, at + length)];
    return [this.#buffer.subarray(at), this.#buffer.subarray(0, length - (size - at))];
  }

  /** Grows the buffer (while it has not reached capacity) so `needed` bytes fit without wrapping. */
  #grow(needed: number): void {
    const current = this.#buffer.length;
    if (current >= this.capacity || needed <= current) return;
    let size = current;
    while (size < needed && size < this.capacity) size *= 2;
    size = Math.min(size, this.capacity);
    // Not yet wrapped (the buffer was never full), so the bytes sit at [0, end).
    const next = Buffer.allocUnsafe(size);
    this.#buffer.copy(next, 0, 0, this.#end);
    this.#buffer = next;
  }
}

import { Buffer } from 'node:buffer';
import { LockstepError } from '@lockstep/core';

/** The largest message body accepted by default, in bytes: 1 MiB, as for every Lockstep transport. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** The largest header section accepted by default (up to and including the blank line), in bytes. */
export const DEFAULT_MAX_HEADER_BYTES = 8 * 1024;

export interface FrameReaderOptions {
  /** Bodies larger than this are skipped as they arrive and reported as PAYLOAD_TOO_LARGE. Default 1 MiB. */
  maxMessageBytes?: number;
  /** A header section longer than this is a parse error. Default 8 KiB. */
  maxHeaderBytes?: number;
  /**
   * How many bytes the reader throws away looking for the next `Content-Length` header after a
   * framing error before it gives up (`onFatal`). Default `maxMessageBytes + maxHeaderBytes`.
   */
  maxResyncBytes?: number;
}

export interface FrameReaderHandlers {
  /** A complete message body, decoded from UTF-8. */
  onMessage(body: string): void;
  /**
   * A message the reader could not deliver and stepped over: PARSE_ERROR (bad header, invalid
   * UTF-8) or PAYLOAD_TOO_LARGE. The reader goes on with the next message. While it is looking for
   * the next header after a bad one, only the first error of that episode is reported.
   */
  onError(error: LockstepError): void;
  /** The reader lost the framing for good and stopped; nothing more is delivered. */
  onFatal(error: LockstepError): void;
}

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const HEADER_END = Buffer.from('\r\n\r\n', 'latin1');
const CONTENT_LENGTH = Buffer.from('content-length', 'latin1');
/** `Name: value`, the name an HTTP token: what a header line looks like, as opposed to noise. */
const HEADER_LINE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+[ \t]*:[^\r\n]*$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

type Mode = 'header' | 'body' | 'skip' | 'resync' | 'stopped';

/** A header section, parsed: the body length, or why the message cannot be read. */
type HeaderVerdict = { ok: true; length: number; skip?: LockstepError } | { ok: false; error: LockstepError; wellFormed: boolean };

/**
 * Writes one message with LSP base-protocol framing: `Content-Length: N\r\n\r\n` and the N bytes of
 * the body in UTF-8 — byte for byte what `vscode-jsonrpc`'s StreamMessageWriter writes.
 */
export function encodeFrame(body: string): Buffer {
  const length = Buffer.byteLength(body, 'utf8');
  const header = `Content-Length: ${length}\r\n\r\n`;
  const frame = Buffer.allocUnsafe(header.length + length);
  frame.write(header, 0, 'latin1');
  frame.write(body, header.length, 'utf8');
  return frame;
}

/**
 * An incremental reader of LSP-framed messages. Feed it chunks as they arrive; it works on bytes and
 * decodes only whole bodies, so chunk boundaries may fall anywhere (inside a header, inside a
 * multi-byte character). Header names are matched in any case; headers other than `Content-Length`
 * are ignored, except a `Content-Type` charset other than UTF-8, which is refused.
 *
 * Recovery: a message whose length is known but which cannot be delivered (too large, bad charset,
 * invalid UTF-8) is skipped exactly and reported. A header section that gives no usable length
 * (missing or invalid `Content-Length`, a line without `:`, longer than `maxHeaderBytes`) is
 * reported as PARSE_ERROR, and the reader resynchronises: it scans for the next `Content-Length`
 * header, in any case, and reads on from there — from the end of the bad section when that was a
 * well-formed header block (its body follows it), from its second byte when the section holds
 * noise (a stray log line before a real header is thus stepped over without losing the header). If it
 * throws away more than `maxResyncBytes` without finding one, it gives up: `onFatal` is called and
 * the reader stops (the stdio transport then closes with that reason).
 *
 * Memory stays bounded: the reader holds at most one header section and one body within the
 * limits; an oversized body is counted down as its bytes arrive, never buffered.
 */
export class FrameReader {
  readonly maxMessageBytes: number;
  readonly maxHeaderBytes: number;
  readonly maxResyncBytes: number;
  readonly #handlers: FrameReaderHandlers;
  #mode: Mode = 'header';
  /** Header mode: the header bytes so far. Resync mode: the last bytes scanned, which may start a match. */
  #held: Buffer = EMPTY;
  #body: Buffer | undefined;
  #bodyLength = 0;
  #bodyFilled = 0;
  /** Body bytes still to read (body mode) or to throw away (skip mode). */
  #remaining = 0;
  /** Bytes thrown away in the current resynchronisation. */
  #discarded = 0;
  /** Set by a framing error, cleared by the next good header: errors in between are not reported again. */
  #recovering = false;

  constructor(handlers: FrameReaderHandlers, options: FrameReaderOptions = {}) {
    this.#handlers = handlers;
    this.maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
    this.maxResyncBytes = options.maxResyncBytes ?? this.maxMessageBytes + this.maxHeaderBytes;
    if (!(this.maxHeaderBytes >= 32)) throw new RangeError('maxHeaderBytes must be at least 32');
    if (!(this.maxMessageBytes >= 0)) throw new RangeError('maxMessageBytes must not be negative');
  }

  /** Bytes the reader is holding on to: a partial header and the buffer of a partial body. */
  get bufferedBytes(): number {
    return this.#held.length + (this.#body?.length ?? 0);
  }

  /** False once the reader has stopped (given up, or `stop()`). */
  get active(): boolean {
    return this.#mode !== 'stopped';
  }

  /** Stops the reader: later chunks are ignored, buffers are released. */
  stop(): void {
    this.#mode = 'stopped';
    this.#held = EMPTY;
    this.#body = undefined;
  }

  /** Feeds the next chunk of the byte stream. Handlers are called synchronously, in stream order. */
  push(chunk: Uint8Array): void {
    if (this.#mode === 'stopped' || chunk.byteLength === 0) return;
    const first = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    // Bytes pushed back for a second look (resynchronisation) are read before the rest of the chunk
    // they came from: a stack of [buffer, offset], never recursion.
    const work: Array<[Buffer, number]> = [[first, 0]];
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const [data, offset] = top;
      if (offset >= data.length || !this.active) {
        work.pop();
        continue;
      }
      const step = this.#step(data, offset);
      top[1] = step.offset;
      if (step.pushBack !== undefined && step.pushBack.length > 0) work.push([step.pushBack, 0]);
    }
  }

  #step(data: Buffer, offset: number): { offset: number; pushBack?: Buffer } {
    switch (this.#mode) {
      case 'header':
        return this.#readHeader(data, offset);
      case 'body':
        return { offset: this.#readBody(data, offset) };
      case 'skip': {
        const count = Math.min(this.#remaining, data.length - offset);
        this.#remaining -= count;
        if (this.#remaining === 0) this.#mode = 'header';
        return { offset: offset + count };
      }
      case 'resync':
        return this.#resync(data, offset);
      case 'stopped':
        return { offset: data.length };
    }
  }

  #readHeader(data: Buffer, offset: number): { offset: number; pushBack?: Buffer } {
    const held = this.#held;
    if (held.length === 0) {
      // Blank lines between messages are tolerated.
      while (offset < data.length && (data[offset] === CR || data[offset] === LF)) offset++;
      if (offset === data.length) return { offset };
    }
    const taken = data.subarray(offset, offset + (this.maxHeaderBytes - held.length));
    const window = held.length === 0 ? taken : Buffer.concat([held, taken]);
    // What was held has been searched already, except a partial "\r\n\r" at its end.
    const end = window.indexOf(HEADER_END, Math.max(0, held.length - 3));
    if (end === -1) {
      if (window.length >= this.maxHeaderBytes) {
        this.#held = EMPTY;
        this.#framingError(`header section longer than ${this.maxHeaderBytes} bytes`, { limit: this.maxHeaderBytes });
        return { offset: offset + taken.length, pushBack: this.#enterResync(window.subarray(1)) };
      }
      this.#held = Buffer.from(window);
      return { offset: offset + taken.length };
    }
    this.#held = EMPTY;
    const consumed = offset + (end + HEADER_END.length - held.length);
    const verdict = this.#parseHeaders(window.subarray(0, end));
    if (!verdict.ok) {
      this.#report(verdict.error, true);
      // A well-formed header block with no usable length: what follows it is its body, of unknown
      // size — scan from there. A block with noise in it (a stray log line glued to a header):
      // the real header may be inside it — scan from its second byte.
      const again = verdict.wellFormed ? EMPTY : window.subarray(1, end + HEADER_END.length);
      return { offset: consumed, pushBack: this.#enterResync(again) };
    }
    this.#recovering = false;
    if (verdict.skip) {
      this.#handlers.onError(verdict.skip);
      this.#remaining = verdict.length;
      this.#mode = verdict.length > 0 ? 'skip' : 'header';
      return { offset: consumed };
    }
    this.#bodyLength = verdict.length;
    this.#remaining = verdict.length;
    this.#bodyFilled = 0;
    this.#mode = verdict.length > 0 ? 'body' : 'header';
    if (verdict.length === 0) this.#deliver(EMPTY);
    return { offset: consumed };
  }

  #parseHeaders(section: Buffer): HeaderVerdict {
    let length: number | undefined;
    let charset: string | undefined;
    const lines = section.toString('latin1').split('\r\n');
    const wellFormed = lines.every((line) => line.length === 0 || HEADER_LINE.test(line));
    const invalid = (message: string): HeaderVerdict => ({ ok: false, error: new LockstepError('PARSE_ERROR', message), wellFormed });
    for (const line of lines) {
      if (line.length === 0) continue;
      const colon = line.indexOf(':');
      if (colon === -1) return invalid(`header line without ':' (${JSON.stringify(line.slice(0, 80))})`);
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') {
        if (!/^\d{1,15}$/.test(value)) return invalid(`invalid Content-Length ${JSON.stringify(value.slice(0, 40))}`);
        const parsed = Number(value);
        if (length !== undefined && length !== parsed) return invalid('conflicting Content-Length headers');
        length = parsed;
      } else if (name === 'content-type') {
        charset = /charset\s*=\s*"?([^";\s]+)/i.exec(value)?.[1]?.toLowerCase();
      }
    }
    if (length === undefined) return invalid('header section without Content-Length');
    if (length > this.maxMessageBytes) {
      const message = `message of ${length} bytes exceeds the limit of ${this.maxMessageBytes}`;
      return { ok: true, length, skip: new LockstepError('PAYLOAD_TOO_LARGE', message, { limit: this.maxMessageBytes, length }) };
    }
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return { ok: true, length, skip: new LockstepError('PARSE_ERROR', `unsupported charset ${JSON.stringify(charset)}: only UTF-8 is read`) };
    }
    return { ok: true, length };
  }

  #readBody(data: Buffer, offset: number): number {
    const count = Math.min(this.#remaining, data.length - offset);
    if (this.#body === undefined && count === this.#bodyLength) {
      // The whole body is in this chunk: decode it in place.
      this.#mode = 'header';
      this.#remaining = 0;
      this.#deliver(data.subarray(offset, offset + count));
      return offset + count;
    }
    this.#body ??= Buffer.allocUnsafe(this.#bodyLength);
    data.copy(this.#body, this.#bodyFilled, offset, offset + count);
    this.#bodyFilled += count;
    this.#remaining -= count;
    if (this.#remaining === 0) {
      const body = this.#body;
      this.#body = undefined;
      this.#mode = 'header';
      this.#deliver(body);
    }
    return offset + count;
  }

  /** Decodes and hands over a body; the caller has already put the reader back in header mode. */
  #deliver(bytes: Uint8Array): void {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      this.#handlers.onError(new LockstepError('PARSE_ERROR', 'message body is not valid UTF-8'));
      return;
    }
    this.#handlers.onMessage(text);
  }

  /** Scans for the next `Content-Length` (any case); the bytes before it are thrown away. */
  #resync(data: Buffer, offset: number): { offset: number; pushBack?: Buffer } {
    const held = this.#held;
    const window = held.length === 0 ? data.subarray(offset) : Buffer.concat([held, data.subarray(offset)]);
    const found = indexOfContentLength(window);
    if (found !== -1) {
      this.#discarded += found;
      this.#held = EMPTY;
      this.#mode = 'header';
      if (found < held.length) return { offset, pushBack: Buffer.from(held.subarray(found)) };
      return { offset: offset + (found - held.length) };
    }
    const keep = Math.min(window.length, CONTENT_LENGTH.length - 1);
    this.#discarded += window.length - keep;
    this.#held = Buffer.from(window.subarray(window.length - keep));
    if (this.#discarded > this.maxResyncBytes) {
      const error = new LockstepError('PARSE_ERROR', `lost the message framing: no Content-Length header in ${this.#discarded} bytes after a framing error`, {
        discarded: this.#discarded,
      });
      this.stop();
      this.#handlers.onFatal(error);
    }
    return { offset: data.length };
  }

  /** Starts looking for the next header; `again` are bytes already seen that must be searched too. */
  #enterResync(again: Buffer): Buffer {
    this.#mode = 'resync';
    this.#discarded = 0;
    this.#held = EMPTY;
    return Buffer.from(again);
  }

  #framingError(message: string, data?: Record<string, unknown>): void {
    this.#report(new LockstepError('PARSE_ERROR', message, data), true);
  }

  #report(error: LockstepError, framing: boolean): void {
    if (framing && this.#recovering) return;
    if (framing) this.#recovering = true;
    this.#handlers.onError(error);
  }
}

/** Index of the first `content-length`, compared without case, or -1. */
function indexOfContentLength(bytes: Buffer): number {
  const last = bytes.length - CONTENT_LENGTH.length;
  outer: for (let i = 0; i <= last; i++) {
    for (let j = 0; j < CONTENT_LENGTH.length; j++) {
      let byte = bytes[i + j]!;
      if (byte >= 0x41 && byte <= 0x5a) byte |= 0x20;
      if (byte !== CONTENT_LENGTH[j]) continue outer;
    }
    return i;
  }
  return -1;
}

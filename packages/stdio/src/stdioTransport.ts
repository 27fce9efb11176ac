import type { Readable, Writable } from 'node:stream';
import type { Frame, LockstepError, Transport, TransportState } from '@lockstep/core';
import { ReplaySubject, Subject, type Observable } from 'rxjs';
import { FrameReader, encodeFrame } from './framing.js';
import { frameWriter } from './stdoutGuard.js';

export interface StdioTransportOptions {
  /** Where the peer's frames come from (`process.stdin`, a child's `stdout`). */
  input: Readable;
  /** Where frames to the peer go (`process.stdout`, a child's `stdin`). May be the same duplex as `input`. */
  output: Writable;
  /** Incoming messages larger than this are skipped and reported as PAYLOAD_TOO_LARGE. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Incoming header sections longer than this are a parse error. Default 8 KiB. */
  maxHeaderBytes?: number;
  /**
   * An incoming message that could not be delivered and was stepped over (PARSE_ERROR,
   * PAYLOAD_TOO_LARGE). Default: ignored. A server answers it (`serveStdio` sends a JSON-RPC error
   * with id null); a client reports it.
   */
  onFramingError?: (error: LockstepError) => void;
  /** Extra facts for `transport.info` (merged over `{ transport: 'stdio' }`). */
  info?: Readonly<Record<string, unknown>>;
}

/**
 * A {@link Transport} over a pair of byte streams with LSP base-protocol framing
 * (`Content-Length: N\r\n\r\n` + N bytes of UTF-8), byte-compatible with `vscode-jsonrpc`.
 *
 * - Text frames only: `send` refuses a binary frame by answering false (nothing is written and the
 *   transport stays open); use the JSON codec over stdio.
 * - Starts `open`. It closes — once, with a reason — when `close()` is called, when the input ends or
 *   fails, when the output fails (EPIPE after the peer died: never thrown, never an unhandled
 *   'error'), or when the reader loses the framing for good.
 * - `close()` ends the output after the frames already written (so the peer reads them, then EOF)
 *   and stops reading: a separate input stream is destroyed; a duplex used both ways is drained
 *   until the peer ends it too.
 * - `bufferedAmount` is `output.writableLength`. On Linux, Node writes to a stdout pipe
 *   synchronously, so there it is 0 and a peer that stops reading blocks the writer.
 * - The output's `write` is bound when the transport is created, so patching it later (the stdout
 *   guard of `serveStdio`) does not divert frames.
 */
export function createStdioTransport(options: StdioTransportOptions): Transport {
  return new StdioTransport(options);
}

const swallow = () => {};

class StdioTransport implements Transport {
  readonly #frames = new Subject<Frame>();
  // A ReplaySubject: a subscriber that comes after the close must still learn of it.
  readonly #state = new ReplaySubject<TransportState>(1);
  readonly frames: Observable<Frame> = this.#frames.asObservable();
  readonly state: Observable<TransportState> = this.#state.asObservable();
  readonly info: Readonly<Record<string, unknown>>;
  readonly #input: Readable;
  readonly #output: Writable;
  readonly #write: (chunk: Uint8Array) => boolean;
  readonly #reader: FrameReader;
  readonly #detach: Array<() => void> = [];
  #open = true;

  constructor(options: StdioTransportOptions) {
    const { input, output } = options;
    this.#input = input;
    this.#output = output;
    this.info = { transport: 'stdio', ...options.info };
    this.#write = frameWriter(output);
    const onFramingError = options.onFramingError;
    const readerOptions: { maxMessageBytes?: number; maxHeaderBytes?: number } = {};
    if (options.maxMessageBytes !== undefined) readerOptions.maxMessageBytes = options.maxMessageBytes;
    if (options.maxHeaderBytes !== undefined) readerOptions.maxHeaderBytes = options.maxHeaderBytes;
    this.#reader = new FrameReader(
      {
        onMessage: (body) => {
          if (this.#open) this.#frames.next(body);
        },
        onError: (error) => {
          if (!this.#open || !onFramingError) return;
          try {
            onFramingError(error);
          } catch {
            // A faulty hook must not break the read loop.
          }
        },
        onFatal: (error) => this.close(error.message),
      },
      readerOptions,
    );
    this.#state.next({ status: 'open' });

    // Errors after the close (EPIPE from a write still in flight) must never become unhandled.
    input.on('error', swallow);
    if (output !== (input as unknown)) output.on('error', swallow);

    if (input.destroyed || input.readableEnded) {
      this.#shut('input already ended');
      return;
    }
    this.#listen(input, 'data', (chunk: Buffer | string) => this.#reader.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk));
    this.#listen(input, 'end', () => this.close('peer closed the stream'));
    this.#listen(input, 'close', () => this.close('input closed'));
    this.#listen(input, 'error', (error: Error) => this.close(`input error: ${describe(error)}`));
    this.#listen(output, 'error', (error: Error) => this.close(`output error: ${describe(error)}`));
    this.#listen(output, 'close', () => this.close('output closed'));
  }

  get bufferedAmount(): number {
    return this.#output.writableLength;
  }

  send(frame: Frame): boolean {
    if (!this.#open) return false;
    if (typeof frame !== 'string') return false;
    if (this.#output.destroyed || this.#output.writableEnded) {
      this.close('output closed');
      return false;
    }
    try {
      this.#write(encodeFrame(frame));
    } catch (error) {
      // Some streams throw synchronously on a dead descriptor instead of emitting 'error'.
      this.close(`output error: ${describe(error)}`);
      return false;
    }
    return true;
  }

  close(reason = 'closed'): void {
    if (!this.#open) return;
    const input = this.#input;
    const output = this.#output;
    this.#shut(reason);
    try {
      // The frames already written go first, then the end of the stream.
      if (!output.writableEnded && !output.destroyed) output.end();
    } catch {
      // Already broken: nothing to flush.
    }
    if (output === (input as unknown)) {
      // A duplex (a socket): keep reading, and throwing away, until the peer ends its side too.
      input.resume();
    } else if (!input.destroyed) {
      input.destroy();
    }
  }

  #shut(reason: string): void {
    if (!this.#open) return;
    this.#open = false;
    this.#reader.stop();
    for (const detach of this.#detach.splice(0)) detach();
    this.#state.next({ status: 'closed', reason });
    this.#state.complete();
    this.#frames.complete();
  }

  #listen<A extends unknown[]>(stream: Readable | Writable, event: string, listener: (...args: A) => void): void {
    const handler = listener as (...args: unknown[]) => void;
    stream.on(event, handler);
    this.#detach.push(() => stream.off(event, handler));
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code !== undefined && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}

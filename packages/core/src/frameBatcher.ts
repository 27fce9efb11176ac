import { frameSize, type Codec, type Frame } from './codec.js';

/** How many bytes of messages one batch frame holds at most (a message larger than this goes alone). */
export const DEFAULT_BATCH_BYTES = 64 * 1024;
/** How many messages one batch frame holds at most. */
export const DEFAULT_BATCH_MESSAGES = 512;
/** The most messages a hub accepts in one batch frame; a larger batch is refused whole. */
export const MAX_BATCH_MESSAGES = 4_096;

export interface BatchLimits {
  /** Default 64 KiB: far below any peer's frame limit (1 MiB by default). */
  maxBytes?: number;
  /** Default 512. */
  maxMessages?: number;
}

/**
 * Writes `frames` (encoded messages, in order) as few frames as the limits allow: consecutive frames
 * are joined into batch frames of at most `maxBytes` and `maxMessages`; a group of one is written as
 * it is, never wrapped in an array of one.
 */
export function writeBatched(
  frames: readonly Frame[],
  join: NonNullable<Codec['join']>,
  write: (frame: Frame) => void,
  { maxBytes = DEFAULT_BATCH_BYTES, maxMessages = DEFAULT_BATCH_MESSAGES }: BatchLimits = {},
): void {
  let start = 0;
  let bytes = 0;
  for (let i = 0; i < frames.length; i++) {
    const size = frameSize(frames[i]!);
    if (i > start && (bytes + size > maxBytes || i - start >= maxMessages)) {
      write(i - start === 1 ? frames[start]! : join(frames.slice(start, i)));
      start = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (start < frames.length) write(frames.length - start === 1 ? frames[start]! : join(frames.slice(start)));
}

/** A frame's size as codecs limit it: bytes of a binary frame, UTF-16 code units of a text frame. */

export interface FrameBatcherOptions extends BatchLimits {
  join: NonNullable<Codec['join']>;
  write: (frame: Frame) => void;
  /** Runs the flush once the current burst of sends is over, e.g. `queueMicrotask`. */
  defer: (flush: () => void) => void;
}

/**
 * Holds the frames sent in one burst (one synchronous run of code, by default up to the next
 * microtask) and writes them as batch frames: a client pipelining 1,000 commands sends a couple of
 * frames, not 1,000, and the peer parses, dispatches and wakes up once per frame rather than once
 * per message. Messages keep their order; only the framing changes.
 */
export class FrameBatcher {
  #held: Frame[] = [];
  #scheduled = false;

  constructor(private readonly options: FrameBatcherOptions) {}

  push(frame: Frame): void {
    this.#held.push(frame);
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.options.defer(this.flush);
  }

  /** Writes what is held now (also called by the deferred flush). */
  readonly flush = (): void => {
    this.#scheduled = false;
    const held = this.#held;
    if (held.length === 0) return;
    this.#held = [];
    writeBatched(held, this.options.join, this.options.write, this.options);
  };

  /** Forgets what is held (the connection is gone). */
  clear(): void {
    this.#held = [];
  }
}

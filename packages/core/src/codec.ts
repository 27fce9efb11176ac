import { LockstepError } from './errors.js';

/** What a transport carries: text for JSON, bytes for binary codecs. */
export type Frame = string | Uint8Array;

/**
 * Turns messages into frames and back. Decoded data is `unknown` until a schema has parsed it.
 * `decode` throws a `LockstepError` (`PARSE_ERROR` or `PAYLOAD_TOO_LARGE`) and never anything else.
 */
export interface Codec {
  readonly name: string;
  /** True when frames are binary (a WebSocket binary frame), false for text. */
  readonly binary: boolean;
  /** The largest frame `decode` accepts, when it has a limit: a client tells the hub, which pages below it. */
  readonly maxFrameBytes?: number;
  encode(message: unknown): Frame;
  decode(frame: Frame): unknown;
  /**
   * The frame of an array holding the messages of `frames` (each made by `encode`), built without
   * decoding them: what `encode([a, b])` would give for `[encode(a), encode(b)]`. A codec that has it
   * lets a connection carry JSON-RPC batches (see `FrameBatcher`); one without it never batches.
   */
  join?: (frames: readonly Frame[]) => Frame;
}

/** The size of a frame in the codec's units: UTF-16 code units for text, bytes for binary. */
export function frameSize(frame: Frame): number {
  return typeof frame === 'string' ? frame.length : frame.byteLength;
}

/** The length of `value`'s JSON text (0 for what JSON cannot hold): how the hub sizes states and events. */
export function jsonLength(value: unknown): number {
  return JSON.stringify(value)?.length ?? 0;
}

export interface CodecLimits {
  /** The largest frame accepted, in bytes (UTF-16 code units for text frames). Default 1 MiB. */
  maxFrameBytes?: number;
}

export interface JsonCodecLimits extends CodecLimits {
  /**
   * Deepest nesting of arrays and objects accepted when decoding; a deeper frame is a PARSE_ERROR,
   * found by a scan before JSON.parse builds anything. Default 64 (as the msgpack codec).
   */
  maxDepth?: number;
}

export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;
/** Default nesting limit of decoded frames, in both codecs. */
export const DEFAULT_MAX_JSON_DEPTH = 64;

interface TextCodecHost {
  TextDecoder: new (label: string, options: { fatal: boolean }) => { decode(bytes: Uint8Array): string };
}
const utf8 = new (globalThis as unknown as TextCodecHost).TextDecoder('utf-8', { fatal: true });

/**
 * JSON text frames: the default codec, and what non-TypeScript peers speak.
 *
 * Nesting is bounded before parsing: a megabyte of `[[[[…` costs JSON.parse about ten times the CPU
 * of a flat megabyte (hundreds of milliseconds of a blocked event loop per frame), for a value no
 * lockstep/1 message has. The scan that refuses it costs about a third of JSON.parse on flat data.
 */
export function createJsonCodec(limits: JsonCodecLimits = {}): Codec {
  const maxFrameBytes = limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_JSON_DEPTH;
  if (!(Number.isSafeInteger(maxDepth) && maxDepth >= 1)) throw new RangeError(`invalid maxDepth: ${maxDepth}`);
  return {
    name: 'json',
    binary: false,
    maxFrameBytes,
    encode: (message) => JSON.stringify(message),
    join: joinJson,
    decode(frame) {
      if (frame.length > maxFrameBytes) {
        throw new LockstepError('PAYLOAD_TOO_LARGE', `frame of ${frame.length} bytes exceeds the limit of ${maxFrameBytes}`, {
          limit: maxFrameBytes,
        });
      }
      let text: string;
      try {
        text = typeof frame === 'string' ? frame : utf8.decode(frame);
      } catch {
        throw new LockstepError('PARSE_ERROR', 'frame is not valid UTF-8');
      }
      if (nestedDeeperThan(text, maxDepth)) throw new LockstepError('PARSE_ERROR', `frame is nested deeper than ${maxDepth} levels`);
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw new LockstepError('PARSE_ERROR', `frame is not valid JSON: ${(error as Error).message}`);
      }
    },
  };
}

export const jsonCodec: Codec = createJsonCodec();

/**
 * `[a,b,…]` as one flat string. The obvious `[${frames.join(',')}]` is a concatenation that V8 keeps
 * as a rope, so the socket that writes it flattens it first: a second copy of every batch frame.
 */
function joinJson(frames: readonly Frame[]): string {
  const n = frames.length;
  if (n === 0) return '[]';
  if (n === 1) return `[${frames[0] as string}]`;
  const parts = frames.slice() as string[];
  parts[0] = `[${parts[0]!}`;
  parts[n - 1] = `${parts[n - 1]!}]`;
  return parts.join(',');
}

/**
 * True when the JSON text opens more than `limit` arrays or objects inside one another. Brackets
 * inside strings do not count. Meant to run before JSON.parse: on text that is not JSON the answer
 * does not matter, JSON.parse refuses it next.
 */
function nestedDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Jump to the closing quote: one not preceded by an odd number of backslashes.
      i = text.indexOf('"', i + 1);
      while (i !== -1 && escaped(text, i)) i = text.indexOf('"', i + 1);
      if (i === -1) return false;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

function escaped(text: string, quote: number): boolean {
  let backslashes = 0;
  while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++;
  return (backslashes & 1) === 1;
}

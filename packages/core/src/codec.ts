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
  encode(message: unknown): Frame;
  decode(frame: Frame): unknown;
}

export interface CodecLimits {
  /** The largest frame accepted, in bytes (UTF-16 code units for text frames). Default 1 MiB. */
  maxFrameBytes?: number;
}

export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024;

interface TextCodecHost {
  TextDecoder: new (label: string, options: { fatal: boolean }) => { decode(bytes: Uint8Array): string };
}
const utf8 = new (globalThis as unknown as TextCodecHost).TextDecoder('utf-8', { fatal: true });

/** JSON text frames: the default codec, and what non-TypeScript peers speak. */
export function createJsonCodec(limits: CodecLimits = {}): Codec {
  const maxFrameBytes = limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  return {
    name: 'json',
    binary: false,
    encode: (message) => JSON.stringify(message),
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
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw new LockstepError('PARSE_ERROR', `frame is not valid JSON: ${(error as Error).message}`);
      }
    },
  };
}

export const jsonCodec: Codec = createJsonCodec();

import { Decoder, Encoder } from '@msgpack/msgpack';
import { DEFAULT_MAX_FRAME_BYTES, type Codec, type CodecLimits, type Frame } from './codec.js';
import { LockstepError } from './errors.js';

/**
 * `@lockstep/core/msgpack`: the binary codec of the `lockstep.v1.msgpack` WebSocket subprotocol.
 *
 * It carries exactly the values JSON carries. Decoding refuses everything JSON.parse could not have
 * produced — binary and extension types (timestamps), non-string map keys, NaN and infinities,
 * invalid UTF-8, a `__proto__` key — so decoded data looks like JSON.parse output whichever codec a
 * peer speaks, and the hub's logs stay JSON. Encoding is meant for JSON-compatible values: `undefined`
 * members are omitted as JSON.stringify omits them; a Date, bigint, typed array or NaN encodes into a
 * frame the decoder refuses.
 *
 * Before the library builds anything, a structural pre-scan walks the headers and refuses length
 * bombs: every array, map, string claims at most what the rest of the frame could hold (each pending
 * element needs at least one byte), so a 1 MiB frame can never make the decoder allocate more than
 * about a million slots, however its containers are nested.
 */

export interface MsgpackCodecLimits extends CodecLimits {
  /** Deepest nesting of non-empty arrays and maps, in decoded and in encoded messages. Default 64. */
  maxDepth?: number;
}

export const DEFAULT_MAX_DEPTH = 64;

export function createMsgpackCodec(limits: MsgpackCodecLimits = {}): Codec {
  const maxFrameBytes = limits.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < 1) throw new RangeError(`invalid maxFrameBytes: ${maxFrameBytes}`);
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1) throw new RangeError(`invalid maxDepth: ${maxDepth}`);

  // Both are reusable: they reset their state on every call and clone themselves if re-entered.
  // The library counts the scalars inside the deepest container as one more level.
  const encoder = new Encoder({ ignoreUndefined: true, maxDepth: maxDepth + 1 });
  const decoder = new Decoder({
    // Second line of defence behind the pre-scan, which already enforces all of this.
    maxStrLength: maxFrameBytes,
    maxArrayLength: maxFrameBytes,
    maxMapLength: maxFrameBytes,
    maxBinLength: 0,
    maxExtLength: 0,
    mapKeyConverter: (key) => {
      if (typeof key !== 'string') throw new LockstepError('PARSE_ERROR', 'map keys must be strings');
      return key;
    },
  });
  const scanner = createScanner(maxDepth);

  return {
    name: 'msgpack',
    binary: true,
    maxFrameBytes,
    encode: (message) => encoder.encode(message),
    join: joinMsgpack,
    decode(frame) {
      if (!(frame instanceof Uint8Array)) {
        throw new LockstepError('PARSE_ERROR', typeof frame === 'string' ? 'msgpack frames are binary, got a text frame' : 'frame is not bytes');
      }
      if (frame.byteLength > maxFrameBytes) {
        throw new LockstepError('PAYLOAD_TOO_LARGE', `frame of ${frame.byteLength} bytes exceeds the limit of ${maxFrameBytes}`, {
          limit: maxFrameBytes,
        });
      }
      try {
        scanner(frame);
        return decoder.decode(frame);
      } catch (error) {
        if (error instanceof LockstepError) throw error;
        throw new LockstepError('PARSE_ERROR', `frame is not valid msgpack: ${error instanceof Error ? error.message : String(error)}`);
      }
    },
  };
}

export const msgpackCodec: Codec = createMsgpackCodec();

/** An array header (fixarray, array 16 or array 32) followed by the encoded elements, copied once. */
function joinMsgpack(frames: readonly Frame[]): Uint8Array {
  const count = frames.length;
  let bytes = 0;
  for (const frame of frames) {
    if (!(frame instanceof Uint8Array)) throw new TypeError('msgpack frames are bytes');
    bytes += frame.byteLength;
  }
  const header = count < 16 ? 1 : count < 0x10000 ? 3 : 5;
  const out = new Uint8Array(header + bytes);
  if (header === 1) out[0] = 0x90 | count;
  else if (header === 3) {
    out[0] = 0xdc;
    out[1] = count >>> 8;
    out[2] = count & 0xff;
  } else {
    out[0] = 0xdd;
    new DataView(out.buffer).setUint32(1, count);
  }
  let offset = header;
  for (const frame of frames) {
    out.set(frame as Uint8Array, offset);
    offset += (frame as Uint8Array).byteLength;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Structural pre-scan: walks the headers of one msgpack value without building it.
// ---------------------------------------------------------------------------------------------

const ARRAY = 0;
const MAP = 1;

function malformed(message: string): never {
  throw new LockstepError('PARSE_ERROR', `frame is not valid msgpack: ${message}`);
}

/** Returns a scan function with its stack preallocated (the scan is synchronous, so it can be shared). */
function createScanner(maxDepth: number): (bytes: Uint8Array) => void {
  // Per open container: elements not yet started (maps count keys and values), and its kind.
  const remaining = new Float64Array(maxDepth + 1);
  const kinds = new Uint8Array(maxDepth + 1);

  return (bytes) => {
    const end = bytes.length;
    let pos = 0;
    let depth = 0;
    // Elements announced by open containers and not yet started: each needs at least one byte.
    let pending = 0;

    for (;;) {
      let isKey = false;
      if (depth > 0) {
        const left = --remaining[depth]!;
        pending--;
        isKey = kinds[depth] === MAP && (left & 1) === 1;
      }
      if (pos >= end) malformed(`truncated at byte ${pos}`);
      const head = bytes[pos++]!;
      let count = 0; // elements of a container header
      let kind = ARRAY;
      let length = 0; // bytes following the header of a scalar
      let isString = false;

      if (head <= 0x7f || head >= 0xe0) {
        // fixint
      } else if (head <= 0x8f) {
        count = head & 0x0f;
        kind = MAP;
      } else if (head <= 0x9f) {
        count = head & 0x0f;
      } else if (head <= 0xbf) {
        length = head & 0x1f;
        isString = true;
      } else {
        switch (head) {
          case 0xc0: // nil
          case 0xc2: // false
          case 0xc3: // true
            break;
          case 0xcc: // uint 8
          case 0xd0: // int 8
            length = 1;
            break;
          case 0xcd:
          case 0xd1:
            length = 2;
            break;
          case 0xce:
          case 0xd2:
            length = 4;
            break;
          case 0xcf:
          case 0xd3:
            length = 8;
            break;
          case 0xca: // float 32: exponent all ones is NaN or ±Infinity
            if (end - pos >= 4 && (bytes[pos]! & 0x7f) === 0x7f && (bytes[pos + 1]! & 0x80) === 0x80) malformed('NaN and infinities are not JSON numbers');
            length = 4;
            break;
          case 0xcb: // float 64
            if (end - pos >= 8 && (bytes[pos]! & 0x7f) === 0x7f && (bytes[pos + 1]! & 0xf0) === 0xf0) malformed('NaN and infinities are not JSON numbers');
            length = 8;
            break;
          case 0xd9: // str 8
          case 0xda: // str 16
          case 0xdb: // str 32
            length = readLength(bytes, pos, 1 << (head - 0xd9));
            pos += 1 << (head - 0xd9);
            isString = true;
            break;
          case 0xdc: // array 16
          case 0xdd: // array 32
            count = readLength(bytes, pos, head === 0xdc ? 2 : 4);
            pos += head === 0xdc ? 2 : 4;
            break;
          case 0xde: // map 16
          case 0xdf: // map 32
            count = readLength(bytes, pos, head === 0xde ? 2 : 4);
            pos += head === 0xde ? 2 : 4;
            kind = MAP;
            break;
          case 0xc4: // bin 8, 16, 32
          case 0xc5:
          case 0xc6:
            return malformed(`binary values are not JSON values (byte ${pos - 1})`);
          case 0xc7: // ext 8, 16, 32 and fixext 1 … 16
          case 0xc8:
          case 0xc9:
          case 0xd4:
          case 0xd5:
          case 0xd6:
          case 0xd7:
          case 0xd8:
            return malformed(`extension types are not used by lockstep/1 (byte ${pos - 1})`);
          default: // 0xc1, never used
            malformed(`0x${head.toString(16)} is not a msgpack type (byte ${pos - 1})`);
        }
      }
      if (isKey && !isString) malformed(`map keys must be strings (byte ${pos - 1})`);

      if (count > 0) {
        if (depth >= maxDepth) malformed(`nested deeper than ${maxDepth} levels`);
        const elements = kind === MAP ? count * 2 : count;
        if (elements > end - pos - pending) {
          malformed(`${kind === MAP ? 'map' : 'array'} claims ${count} entries, but only ${end - pos} bytes are left`);
        }
        depth++;
        kinds[depth] = kind;
        remaining[depth] = elements;
        pending += elements;
        continue;
      }

      if (length > end - pos - pending) malformed(`a value claims ${length} bytes, but only ${end - pos} are left`);
      if (isString) {
        if (!isUtf8(bytes, pos, pos + length)) malformed(`invalid UTF-8 in the string at byte ${pos}`);
        if (isKey && length === 9 && isProtoKey(bytes, pos)) malformed('the key __proto__ is not allowed');
      }
      pos += length;
      while (depth > 0 && remaining[depth] === 0) depth--;
      if (depth === 0) break;
    }
    if (pos !== end) malformed(`${end - pos} trailing bytes after the message`);
  };
}

/** A big-endian unsigned length of `size` (1, 2 or 4) bytes at `pos`. */
function readLength(bytes: Uint8Array, pos: number, size: number): number {
  if (bytes.length - pos < size) malformed(`truncated at byte ${pos}`);
  let value = 0;
  for (let i = 0; i < size; i++) value = value * 256 + bytes[pos + i]!;
  return value;
}

const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f]; // "__proto__"

function isProtoKey(bytes: Uint8Array, pos: number): boolean {
  for (let i = 0; i < 9; i++) if (bytes[pos + i] !== PROTO[i]) return false;
  return true;
}

/** Well-formed UTF-8 as a fatal TextDecoder sees it: no overlongs, surrogates or code points past U+10FFFF. */
function isUtf8(bytes: Uint8Array, start: number, end: number): boolean {
  let i = start;
  while (i < end) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
    } else if (b < 0xc2) {
      return false;
    } else if (b < 0xe0) {
      if (i + 1 >= end || (bytes[i + 1]! & 0xc0) !== 0x80) return false;
      i += 2;
    } else if (b < 0xf0) {
      if (i + 2 >= end) return false;
      const b1 = bytes[i + 1]!;
      if ((b1 & 0xc0) !== 0x80 || (bytes[i + 2]! & 0xc0) !== 0x80) return false;
      if ((b === 0xe0 && b1 < 0xa0) || (b === 0xed && b1 >= 0xa0)) return false;
      i += 3;
    } else if (b < 0xf5) {
      if (i + 3 >= end) return false;
      const b1 = bytes[i + 1]!;
      if ((b1 & 0xc0) !== 0x80 || (bytes[i + 2]! & 0xc0) !== 0x80 || (bytes[i + 3]! & 0xc0) !== 0x80) return false;
      if ((b === 0xf0 && b1 < 0x90) || (b === 0xf4 && b1 >= 0x90)) return false;
      i += 4;
    } else {
      return false;
    }
  }
  return true;
}

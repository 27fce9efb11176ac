import type { Codec } from '@lockstep/core';

/** The WebSocket subprotocol of lockstep/1 with the JSON codec: one message per text frame. */
export const JSON_SUBPROTOCOL = 'lockstep.v1.json';
/** The WebSocket subprotocol of lockstep/1 with the MessagePack codec: one message per binary frame. */
export const MSGPACK_SUBPROTOCOL = 'lockstep.v1.msgpack';
/** Every subprotocol a Lockstep server can speak, in its order of preference. */
export const SUBPROTOCOLS = [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL] as const;
export type Subprotocol = (typeof SUBPROTOCOLS)[number];

/**
 * Prefix of the subprotocol entry that carries a bearer token: `lockstep.bearer.<base64url of the
 * UTF-8 token, no padding>`. Browsers cannot set an `Authorization` header on a WebSocket, but they
 * can offer extra subprotocols; the server never selects this one.
 */
export const BEARER_SUBPROTOCOL_PREFIX = 'lockstep.bearer.';

const byCodecName: Readonly<Record<string, Subprotocol>> = { json: JSON_SUBPROTOCOL, msgpack: MSGPACK_SUBPROTOCOL };

/** The subprotocol that carries frames of `codec` (by its name: `json` or `msgpack`). */
export function subprotocolForCodec(codec: Codec): Subprotocol {
  const subprotocol = Object.hasOwn(byCodecName, codec.name) ? byCodecName[codec.name] : undefined;
  if (subprotocol === undefined) {
    throw new RangeError(`no WebSocket subprotocol for the codec ${JSON.stringify(codec.name)}: use the json or msgpack codec`);
  }
  return subprotocol;
}

export function isSubprotocol(value: string): value is Subprotocol {
  return (SUBPROTOCOLS as readonly string[]).includes(value);
}

interface TextEncoderHost {
  TextEncoder: new () => { encode(text: string): Uint8Array };
}
const utf8 = new (globalThis as unknown as TextEncoderHost).TextEncoder();
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** The subprotocol entry that carries `token` (see {@link BEARER_SUBPROTOCOL_PREFIX}). */
export function bearerSubprotocol(token: string): string {
  return BEARER_SUBPROTOCOL_PREFIX + base64url(utf8.encode(token));
}

/** RFC 4648 §5 without padding: only characters a `Sec-WebSocket-Protocol` token may hold. */
function base64url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

import { crc32 } from 'node:zlib';

/**
 * Record framing of the file store (docs/storage.md, "On-disk format"). Every file of the store —
 * log segments, bases, snapshots — is a sequence of records:
 *
 * ```
 * offset 0   magic    4 bytes  1E 4C 4B 01 ("\x1eLK\x01")
 * offset 4   crc32    u32 LE   zlib.crc32 of bytes 8 … end of the record (length, type, payload)
 * offset 8   length   u32 LE   payload length in bytes
 * offset 12  type     u8       RecordType
 * offset 13  payload  length bytes
 * ```
 *
 * Most payloads are one JSON document. Records that carry events (and snapshots) use a two-part
 * payload: `u32 LE metaLength | meta JSON | body JSON`, so recovery reads the small meta part and
 * never parses event bodies.
 */

export const RECORD_MAGIC = Buffer.from([0x1e, 0x4c, 0x4b, 0x01]);
const MAGIC_U32 = RECORD_MAGIC.readUInt32LE(0);
export const RECORD_HEADER_BYTES = 13;
/** Largest payload a record may have; a length field above it is damage, not data. */
export const MAX_RECORD_PAYLOAD_BYTES = 256 * 1024 * 1024;
/** Version of the on-disk format, in every file header and in `store.json`. */
export const FORMAT_VERSION = 1;

export const RecordType = {
  /** First record of every log file: `{format, storeId, kind, seq, durability?}`. */
  Header: 1,
  /** One `append` call: meta `{s, v, n, c: [[commandId, fingerprint, versionAfter], …]}`, body: events. */
  Commit: 2,
  /** The stream's retention horizon moved: `{s, before}`. */
  Compact: 3,
  /** Sets a stream's head and horizon: `{s, head, oldest}` (bases; snapshot adoption in segments). */
  Stream: 4,
  /** Retained events carried into a base: meta `{s, v, n}`, body: events. */
  Events: 5,
  /** Command records carried into a base: `{c: [[commandId, stream, fingerprint, version], …]}`. */
  Commands: 6,
  /** A snapshot file's only record: meta `{s, version}`, body: the state. */
  Snapshot: 7,
  /** Last record of a base: `{streams, commands}`, the numbers of stream records and command records before it. */
  End: 8,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(RecordType));

/** Encodes a record whose payload is one JSON value. */
export function encodeJsonRecord(type: RecordType, value: unknown): Buffer {
  const text = JSON.stringify(value);
  const length = Buffer.byteLength(text);
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  record.write(text, RECORD_HEADER_BYTES, 'utf8');
  return seal(record, type, length);
}

/** Encodes a record with a two-part payload: meta JSON (read at recovery) and body JSON text. */
export function encodeSplitRecord(type: RecordType, meta: unknown, bodyJson: string): Buffer {
  const metaText = JSON.stringify(meta);
  const metaLength = Buffer.byteLength(metaText);
  const length = 4 + metaLength + Buffer.byteLength(bodyJson);
  const record = Buffer.allocUnsafe(RECORD_HEADER_BYTES + length);
  record.writeUInt32LE(metaLength, RECORD_HEADER_BYTES);
  record.write(metaText, RECORD_HEADER_BYTES + 4, 'utf8');
  record.write(bodyJson, RECORD_HEADER_BYTES + 4 + metaLength, 'utf8');
  return seal(record, type, length);
}

function seal(record: Buffer, type: RecordType, length: number): Buffer {
  if (length > MAX_RECORD_PAYLOAD_BYTES) {
    throw new RangeError(`a record of ${length} bytes exceeds the limit of ${MAX_RECORD_PAYLOAD_BYTES} bytes`);
  }
  RECORD_MAGIC.copy(record, 0);
  record.writeUInt32LE(length, 8);
  record[12] = type;
  record.writeUInt32LE(crc32(record.subarray(8)), 4);
  return record;
}

/** What the first 13 bytes of a record say, or why they cannot start a record. */
export type HeaderCheck = { ok: true; length: number; type: RecordType } | { ok: false; reason: string };

/** Checks a record header; `available` is the number of bytes from the header to the end of the file. */
export function checkHeader(bytes: Buffer, at: number, available: number): HeaderCheck {
  if (available < RECORD_HEADER_BYTES) return { ok: false, reason: `only ${available} bytes left, less than a record header` };
  if (bytes.readUInt32LE(at) !== MAGIC_U32) return { ok: false, reason: 'no record magic' };
  const length = bytes.readUInt32LE(at + 8);
  if (length > MAX_RECORD_PAYLOAD_BYTES) return { ok: false, reason: `record length ${length} exceeds the limit` };
  if (RECORD_HEADER_BYTES + length > available) {
    return { ok: false, reason: `record of ${RECORD_HEADER_BYTES + length} bytes runs past the end of the file (${available} bytes left)` };
  }
  const type = bytes[at + 12]!;
  // The type is checked after the checksum (below): a flipped type bit is a checksum error first.
  return { ok: true, length, type: type as RecordType };
}

/** Verifies the checksum and type of a whole record at `at` (its header already checked). */
export function checkBody(bytes: Buffer, at: number, length: number): string | undefined {
  const expected = bytes.readUInt32LE(at + 4);
  const actual = crc32(bytes.subarray(at + 8, at + RECORD_HEADER_BYTES + length));
  if (expected !== actual) return `checksum mismatch (stored ${hex(expected)}, computed ${hex(actual)})`;
  const type = bytes[at + 12]!;
  if (!KNOWN_TYPES.has(type)) return `unknown record type ${type}`;
  return undefined;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** The two parts of a split payload. */
export function splitPayload(payload: Buffer): { meta: unknown; body: Buffer } {
  if (payload.length < 4) throw new SyntaxError('split payload shorter than its meta length');
  const metaLength = payload.readUInt32LE(0);
  if (4 + metaLength > payload.length) throw new SyntaxError(`meta length ${metaLength} runs past the payload`);
  return {
    meta: JSON.parse(payload.toString('utf8', 4, 4 + metaLength)) as unknown,
    body: payload.subarray(4 + metaLength),
  };
}

/** Only the meta part of a split payload (recovery never parses bodies). */
export function splitMeta(payload: Buffer): unknown {
  if (payload.length < 4) throw new SyntaxError('split payload shorter than its meta length');
  const metaLength = payload.readUInt32LE(0);
  if (4 + metaLength > payload.length) throw new SyntaxError(`meta length ${metaLength} runs past the payload`);
  return JSON.parse(payload.toString('utf8', 4, 4 + metaLength)) as unknown;
}

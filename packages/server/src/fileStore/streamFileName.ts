import { createHash } from 'node:crypto';

/** Longest encoded name kept whole; longer ones are cut and made unique with a hash. */
const MAX_READABLE = 96;

/**
 * A file name (without extension) for a stream, safe on every file system whatever the stream name
 * holds: bytes other than `a-z`, `0-9`, `_` and `-` become `%XX` — so `/`, `.`, `\`, NUL and upper
 * case letters (which collide on case-insensitive file systems) never reach a path — and long names
 * are cut and suffixed with a hash of the full name. Never empty, never `.` or `..`. The stream
 * name itself is stored inside the file; the name is only where to look.
 */
export function streamFileName(stream: string): string {
  let encoded = '';
  for (const byte of Buffer.from(stream, 'utf8')) {
    const safe = (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x30 && byte <= 0x39) || byte === 0x5f || byte === 0x2d;
    encoded += safe ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  if (encoded.length > 0 && encoded.length <= MAX_READABLE) return encoded;
  const hash = createHash('sha256').update(stream, 'utf8').digest('hex').slice(0, 16);
  return `${encoded.slice(0, MAX_READABLE - 17)}~${hash}`;
}

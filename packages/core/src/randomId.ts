interface CryptoHost {
  crypto?: { getRandomValues<T extends Uint8Array>(array: T): T };
}

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';
/** Bytes at or above this are drawn again: 252 = 7 × 36, so every character is equally likely. */
const UNBIASED_LIMIT = 252;

/**
 * A random id of `length` base-36 characters from the platform's CSPRNG (Web Crypto, present in
 * browsers and Node 20), each character uniform (bytes past the last multiple of 36 are drawn
 * again). Used for client ids and command ids, which must not collide across processes and restarts.
 * Throws on a platform without Web Crypto rather than fall back to a predictable generator.
 */
export function randomId(length = 16): string {
  const crypto = (globalThis as CryptoHost).crypto;
  if (!crypto) throw new Error('randomId needs Web Crypto (globalThis.crypto.getRandomValues), which this platform lacks');
  let id = '';
  // A few spare bytes per draw: about 1.6% of bytes are drawn again.
  const bytes = new Uint8Array(length + 8);
  while (id.length < length) {
    crypto.getRandomValues(bytes);
    for (let i = 0; i < bytes.length && id.length < length; i++) {
      const byte = bytes[i]!;
      if (byte < UNBIASED_LIMIT) id += ALPHABET[byte % 36];
    }
  }
  return id;
}

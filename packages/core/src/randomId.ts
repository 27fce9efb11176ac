interface CryptoHost {
  crypto?: { getRandomValues<T extends Uint8Array>(array: T): T };
}

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyz';

/**
 * A random id of `length` base-36 characters from the platform's CSPRNG (Web Crypto, present in
 * browsers and Node 20). Used for client ids and command ids, which must not collide across
 * processes and restarts.
 */
export function randomId(length = 16): string {
  const bytes = new Uint8Array(length);
  const crypto = (globalThis as CryptoHost).crypto;
  if (crypto) crypto.getRandomValues(bytes);
  else for (let i = 0; i < length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let id = '';
  for (const byte of bytes) id += ALPHABET[byte % 36];
  return id;
}

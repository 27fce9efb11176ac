import { afterEach, describe, expect, it, vi } from 'vitest';
import { randomId } from './randomId.js';

describe('randomId', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('gives ids of the length asked, in base 36', () => {
    for (const length of [1, 12, 16, 64]) expect(randomId(length)).toMatch(new RegExp(`^[0-9a-z]{${length}}$`));
  });

  it('draws every character uniformly: bytes past 251 are drawn again, not folded onto 0–3', () => {
    // A generator that gives 254 and 255 first (which `byte % 36` would turn into '2' and '3'), then 40 ('4').
    const sequence = [254, 255, 40];
    let next = 0;
    vi.stubGlobal('crypto', {
      getRandomValues<T extends Uint8Array>(array: T): T {
        for (let i = 0; i < array.length; i++) array[i] = sequence[Math.min(next++, sequence.length - 1)]!;
        return array;
      },
    });
    expect(randomId(1)).toBe('4');
    next = 0;
    expect(randomId(3)).toBe('444');
  });

  it('refuses to run without Web Crypto instead of falling back to Math.random', () => {
    vi.stubGlobal('crypto', undefined);
    expect(() => randomId()).toThrow(/Web Crypto/);
  });
});

import { describe, expect, it } from 'vitest';
import { Scrollback } from './scrollback.js';

/** The bytes at offsets `[from, from + length)` of an endless known sequence. */
function bytes(from: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buffer[i] = (from + i) % 251;
  return buffer;
}

describe('Scrollback', () => {
  it('keeps everything below its capacity, addressed by absolute offsets', () => {
    const ring = new Scrollback(1000);
    ring.write(bytes(0, 300));
    ring.write(bytes(300, 200));
    expect([ring.start, ring.end, ring.size]).toEqual([0, 500, 500]);
    expect(ring.read(0)).toEqual(bytes(0, 500));
    expect(ring.read(123, 456)).toEqual(bytes(123, 333));
    expect(ring.readBase64(10, 20)).toBe(bytes(10, 10).toString('base64'));
  });

  it('drops the oldest bytes past its capacity and keeps counting offsets', () => {
    const ring = new Scrollback(1000);
    for (let offset = 0; offset < 5000; offset += 333) ring.write(bytes(offset, Math.min(333, 5000 - offset)));
    expect([ring.start, ring.end, ring.size]).toEqual([4000, 5000, 1000]);
    // Reads across the wrap point are exact.
    expect(ring.read(4000)).toEqual(bytes(4000, 1000));
    expect(ring.read(4100, 4900)).toEqual(bytes(4100, 800));
    expect(ring.readBase64(4001, 5000)).toBe(bytes(4001, 999).toString('base64'));
    expect(() => ring.read(3999, 4100)).toThrow(RangeError);
    expect(() => ring.read(4500, 5001)).toThrow(RangeError);
  });

  it('keeps only the tail of a write larger than itself', () => {
    const ring = new Scrollback(100);
    ring.write(bytes(0, 50));
    ring.write(bytes(50, 1000));
    expect([ring.start, ring.end]).toEqual([950, 1050]);
    expect(ring.read(950)).toEqual(bytes(950, 100));
  });

  it('grows its memory with the output, never past its capacity', () => {
    const ring = new Scrollback(1024 * 1024);
    ring.write(bytes(0, 10));
    ring.write(bytes(10, 200_000));
    // Large buffers are compared with Buffer.equals: a deep equality of a megabyte is slow.
    expect(ring.read(0).equals(bytes(0, 200_010))).toBe(true);
    ring.write(bytes(200_010, 2_000_000));
    expect(ring.start).toBe(2_200_010 - 1024 * 1024);
    expect(ring.read(ring.start).equals(bytes(ring.start, 1024 * 1024))).toBe(true);
  });

  it('matches a reference model over random writes and reads', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const capacity = 777;
    const ring = new Scrollback(capacity);
    let all = Buffer.alloc(0);
    for (let step = 0; step < 500; step++) {
      const chunk = bytes(all.length, random(400));
      ring.write(chunk);
      all = Buffer.concat([all, chunk]);
      const start = Math.max(0, all.length - capacity);
      expect(ring.start).toBe(start);
      const from = start + random(all.length - start + 1);
      const to = from + random(all.length - from + 1);
      expect(ring.read(from, to)).toEqual(all.subarray(from, to));
    }
  });
});

import { decode as msgpackDecodeUnlimited } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { jsonCodec, type Codec, type Frame } from './codec.js';
import { FrameBatcher, writeBatched } from './frameBatcher.js';
import { msgpackCodec } from './msgpack.js';

const message = (i: number) => ({ jsonrpc: '2.0', id: i, result: { version: i, note: 'x'.repeat(i % 7) } });

describe.each([
  ['json', jsonCodec],
  ['msgpack', msgpackCodec],
] as Array<[string, Codec]>)('%s codec: join', (_, codec) => {
  it.each([0, 1, 2, 15, 16, 17, 300, 65_535, 65_536])('decodes the join of %i encoded messages as their array', (count) => {
    const messages = Array.from({ length: count }, (_, i) => message(i));
    const joined = codec.join!(messages.map((m) => codec.encode(m)));
    expect(createLimitlessDecode(codec)(joined)).toEqual(messages);
  });
});

/** The codecs refuse frames over 1 MiB; the largest joins here are bigger. */
function createLimitlessDecode(codec: Codec): (frame: Frame) => unknown {
  return (frame) => (codec.binary ? msgpackDecodeUnlimited(frame as Uint8Array) : JSON.parse(frame as string));
}

describe('writeBatched', () => {
  const frames = Array.from({ length: 10 }, (_, i) => jsonCodec.encode(message(i)) as string);

  function written(input: readonly Frame[], limits: { maxBytes?: number; maxMessages?: number }): unknown[] {
    const out: Frame[] = [];
    writeBatched(input, jsonCodec.join!, (frame) => out.push(frame), limits);
    return out.map((frame) => JSON.parse(frame as string) as unknown);
  }

  it('keeps the order and the messages, whatever the limits', () => {
    for (const maxMessages of [1, 2, 3, 10, 100]) {
      for (const maxBytes of [1, 60, 200, 10_000]) {
        const out = written(frames, { maxMessages, maxBytes });
        expect(out.flatMap((frame) => (Array.isArray(frame) ? frame : [frame]))).toEqual(frames.map((frame) => JSON.parse(frame)));
      }
    }
  });

  it('writes a single message as it is, never as an array of one', () => {
    expect(written(frames.slice(0, 1), {})).toEqual([message(0)]);
    expect(written(frames, { maxMessages: 1 })).toEqual(frames.map((frame) => JSON.parse(frame)));
  });

  it('fills batches up to maxMessages and maxBytes', () => {
    expect(written(frames, { maxMessages: 4 }).map((frame) => (frame as unknown[]).length)).toEqual([4, 4, 2]);
    const size = frames[0]!.length + frames[1]!.length;
    const out = written(frames.slice(0, 4), { maxBytes: size });
    expect(out[0]).toEqual([message(0), message(1)]);
  });

  it('sends a message larger than maxBytes alone', () => {
    const big = jsonCodec.encode({ jsonrpc: '2.0', method: 'events', params: { text: 'y'.repeat(500) } }) as string;
    const out = written([frames[0]!, big, frames[1]!], { maxBytes: 200 });
    expect(out).toHaveLength(3);
    expect(out[1]).toEqual(JSON.parse(big));
  });
});

describe('FrameBatcher', () => {
  function setup() {
    const out: Frame[] = [];
    const deferred: Array<() => void> = [];
    const batcher = new FrameBatcher({ join: jsonCodec.join!, write: (frame) => out.push(frame), defer: (flush) => deferred.push(flush) });
    return { out, deferred, batcher };
  }

  it('holds the frames of a burst and writes them as one batch when the deferred flush runs', () => {
    const { out, deferred, batcher } = setup();
    batcher.push('{"a":1}');
    batcher.push('{"b":2}');
    batcher.push('{"c":3}');
    expect(out).toEqual([]);
    expect(deferred).toHaveLength(1);
    deferred[0]!();
    expect(out).toEqual(['[{"a":1},{"b":2},{"c":3}]']);
  });

  it('schedules one flush per burst', () => {
    const { out, deferred, batcher } = setup();
    batcher.push('1');
    deferred.shift()!();
    batcher.push('2');
    batcher.push('3');
    expect(deferred).toHaveLength(1);
    deferred.shift()!();
    expect(out).toEqual(['1', '[2,3]']);
  });

  it('forgets what it holds on clear', () => {
    const { out, deferred, batcher } = setup();
    batcher.push('1');
    batcher.clear();
    deferred.shift()!();
    expect(out).toEqual([]);
  });
});

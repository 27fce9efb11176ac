import { Buffer } from 'node:buffer';
import { PassThrough } from 'node:stream';
import { LockstepError, createRandom, type Random } from '@lockstep/core';
import { StreamMessageWriter } from 'vscode-jsonrpc/node';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_MESSAGE_BYTES, FrameReader, encodeFrame, type FrameReaderOptions } from './framing.js';

/** A reader that records everything it reports. */
function recorder(options: FrameReaderOptions = {}) {
  const messages: string[] = [];
  const errors: LockstepError[] = [];
  const fatal: LockstepError[] = [];
  const reader = new FrameReader(
    {
      onMessage: (body) => messages.push(body),
      onError: (error) => errors.push(error),
      onFatal: (error) => fatal.push(error),
    },
    options,
  );
  return { reader, messages, errors, fatal };
}

const bytes = (text: string) => Buffer.from(text, 'utf8');
const frame = (body: string) => encodeFrame(body);
const rawFrame = (header: string, body: string) => Buffer.concat([Buffer.from(header, 'latin1'), bytes(body)]);

/** Messages like a real session: JSON-RPC, multi-byte text, header look-alikes inside bodies. */
function conversation(random: Random, count: number): string[] {
  const samples = ['ünïcödé', '日本語のテキスト', '🚀👩‍💻🏳️‍🌈', 'e\u0301', '\u{10FFFF}', 'Content-Length: 12\r\n\r\n', '\r\n\r\n', '"quoted"', 'plain ascii'];
  return Array.from({ length: count }, (_, i) => {
    const parts = Array.from({ length: 1 + random.int(6) }, () => random.pick(samples));
    const padding = 'x'.repeat(random.int(3) === 0 ? random.int(3_000) : random.int(40));
    return JSON.stringify({ jsonrpc: '2.0', id: i, method: 'command', params: { title: parts.join(' '), padding } });
  });
}

/** Splits `data` at random points (chunks of 1 to `max` bytes). */
function randomChunks(data: Buffer, random: Random, max: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < data.length;) {
    const size = 1 + random.int(max);
    chunks.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

describe('encodeFrame', () => {
  it('writes Content-Length in bytes, a blank line, then the UTF-8 body', () => {
    expect(frame('{"a":1}').toString('latin1')).toBe('Content-Length: 7\r\n\r\n{"a":1}');
    const body = '{"t":"é日🚀"}';
    const encoded = frame(body);
    const header = `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    expect(encoded.subarray(0, header.length).toString('latin1')).toBe(header);
    expect(encoded.subarray(encoded.length - Buffer.byteLength(body)).toString('utf8')).toBe(body);
  });

  it('writes exactly the bytes vscode-jsonrpc writes for the same message', async () => {
    const messages = [
      { jsonrpc: '2.0' as const, id: 1, method: 'hello', params: { protocol: 1 } },
      { jsonrpc: '2.0' as const, method: 'events', params: { stream: 'tasks/p', events: [{ version: 1, data: { title: 'ünï 日本 🚀' } }] } },
      { jsonrpc: '2.0' as const, id: 'x', result: { time: 12 } },
    ];
    for (const message of messages) {
      const sink = new PassThrough();
      const chunks: Buffer[] = [];
      sink.on('data', (chunk: Buffer) => chunks.push(chunk));
      const writer = new StreamMessageWriter(sink);
      await writer.write(message);
      writer.dispose();
      expect(Buffer.concat(chunks).equals(frame(JSON.stringify(message)))).toBe(true);
    }
  });
});

describe('FrameReader', () => {
  describe('chunking', () => {
    it('reads a message split anywhere, including inside the header', () => {
      const encoded = frame('{"jsonrpc":"2.0","method":"ping"}');
      for (let cut = 1; cut < encoded.length; cut++) {
        const { reader, messages, errors } = recorder();
        reader.push(encoded.subarray(0, cut));
        reader.push(encoded.subarray(cut));
        expect(messages, `cut at ${cut}`).toEqual(['{"jsonrpc":"2.0","method":"ping"}']);
        expect(errors).toEqual([]);
      }
    });

    it('reads several messages from one chunk, in order', () => {
      const { reader, messages } = recorder();
      reader.push(Buffer.concat([frame('one'), frame('two'), frame(''), frame('four')]));
      expect(messages).toEqual(['one', 'two', '', 'four']);
    });

    it('decodes a multi-byte character split across chunks only once the body is whole', () => {
      const body = '€🚀日';
      const encoded = frame(body);
      const headerLength = encoded.length - Buffer.byteLength(body);
      // Cut inside each character: after the first byte of € (3 bytes), inside 🚀 (4 bytes), inside 日.
      for (const inside of [1, 2, 4, 5, 6, 8, 9]) {
        const { reader, messages } = recorder();
        reader.push(encoded.subarray(0, headerLength + inside));
        expect(messages).toEqual([]);
        reader.push(encoded.subarray(headerLength + inside));
        expect(messages).toEqual([body]);
      }
    });

    it('reproduces a conversation of 300 messages fed one byte at a time', () => {
      const sent = conversation(createRandom(4), 300);
      const stream = Buffer.concat(sent.map(frame));
      const { reader, messages, errors } = recorder();
      for (let i = 0; i < stream.length; i++) reader.push(stream.subarray(i, i + 1));
      expect(errors).toEqual([]);
      expect(messages.length).toBe(sent.length);
      expect(messages).toEqual(sent);
      expect(reader.bufferedBytes).toBe(0);
    });

    it.each([1, 2, 3, 42, 1_000, 65_535])('reproduces a conversation under seeded random chunking (seed %i)', (seed) => {
      const random = createRandom(seed);
      const sent = conversation(random, 250);
      const stream = Buffer.concat(sent.map(frame));
      const { reader, messages, errors } = recorder();
      for (const chunk of randomChunks(stream, random, random.pick([3, 64, 4_096, 70_000]))) reader.push(chunk);
      expect(errors).toEqual([]);
      expect(messages).toEqual(sent);
    });

    it('accepts any Uint8Array view, not only Buffers', () => {
      const { reader, messages } = recorder();
      const encoded = frame('view');
      const backing = new Uint8Array(encoded.length + 10);
      backing.set(encoded, 5);
      reader.push(backing.subarray(5, 5 + encoded.length));
      expect(messages).toEqual(['view']);
    });
  });

  describe('headers', () => {
    it.each(['Content-Length', 'content-length', 'CONTENT-LENGTH', 'cOnTeNt-LeNgTh'])('matches the header name in any case (%s)', (name) => {
      const { reader, messages, errors } = recorder();
      reader.push(rawFrame(`${name}: 4\r\n\r\n`, 'body'));
      expect(messages).toEqual(['body']);
      expect(errors).toEqual([]);
    });

    it('ignores other headers, such as Content-Type, before or after Content-Length, and spaces around values', () => {
      const { reader, messages, errors } = recorder();
      reader.push(rawFrame('Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: 2\r\n\r\n', '{}'));
      reader.push(rawFrame('Content-Length:3\r\nX-Trace: abc\r\nContent-Type: application/json; charset="UTF-8"\r\n\r\n', '[1]'));
      reader.push(rawFrame('Content-Length:    1   \r\n\r\n', '7'));
      expect(messages).toEqual(['{}', '[1]', '7']);
      expect(errors).toEqual([]);
    });

    it('tolerates blank lines between messages', () => {
      const { reader, messages, errors } = recorder();
      reader.push(Buffer.concat([frame('a'), Buffer.from('\r\n\r\n\n'), frame('b')]));
      expect(messages).toEqual(['a', 'b']);
      expect(errors).toEqual([]);
    });

    it('skips a body in another charset, reports it, and reads the next message', () => {
      const { reader, messages, errors } = recorder();
      reader.push(Buffer.concat([rawFrame('Content-Length: 4\r\nContent-Type: application/json; charset=utf-16\r\n\r\n', 'abcd'), frame('next')]));
      expect(messages).toEqual(['next']);
      expect(errors.map((error) => error.code)).toEqual(['PARSE_ERROR']);
      expect(errors[0]!.message).toMatch(/charset/);
    });

    it('reports a body that is not valid UTF-8 and reads the next message', () => {
      const { reader, messages, errors } = recorder();
      const invalid = Buffer.from([0x7b, 0xff, 0xfe, 0x7d]);
      reader.push(Buffer.concat([Buffer.from(`Content-Length: ${invalid.length}\r\n\r\n`), invalid, frame('fine')]));
      expect(messages).toEqual(['fine']);
      expect(errors.map((error) => [error.code, error.message])).toEqual([['PARSE_ERROR', 'message body is not valid UTF-8']]);
    });
  });

  describe('framing errors and recovery', () => {
    it.each([
      ['a missing Content-Length', 'Content-Type: application/json\r\n\r\n', /without Content-Length/],
      ['a non-numeric Content-Length', 'Content-Length: abc\r\n\r\n', /invalid Content-Length/],
      ['a negative Content-Length', 'Content-Length: -4\r\n\r\n', /invalid Content-Length/],
      ['a Content-Length in exponent form', 'Content-Length: 1e3\r\n\r\n', /invalid Content-Length/],
      ['an empty Content-Length', 'Content-Length:\r\n\r\n', /invalid Content-Length/],
      ['conflicting Content-Length headers', 'Content-Length: 3\r\ncontent-length: 4\r\n\r\n', /conflicting/],
      ['a header line without a colon', 'Content-Length 4\r\n\r\n', /without ':'/],
    ])('reports %s as PARSE_ERROR and resynchronises at the next Content-Length', (_, header, message) => {
      const { reader, messages, errors, fatal } = recorder();
      reader.push(Buffer.concat([frame('before'), rawFrame(header, '{"lost":true}'), frame('after 1'), frame('after 2')]));
      expect(messages).toEqual(['before', 'after 1', 'after 2']);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toBeInstanceOf(LockstepError);
      expect(errors[0]!.code).toBe('PARSE_ERROR');
      expect(errors[0]!.message).toMatch(message);
      expect(fatal).toEqual([]);
    });

    it('recovers the same way when the bad message arrives one byte at a time', () => {
      const stream = Buffer.concat([frame('before'), rawFrame('Content-Length: nope\r\n\r\n', 'garbage body'), frame('after')]);
      const { reader, messages, errors } = recorder();
      for (let i = 0; i < stream.length; i++) reader.push(stream.subarray(i, i + 1));
      expect(messages).toEqual(['before', 'after']);
      expect(errors.map((error) => error.code)).toEqual(['PARSE_ERROR']);
    });

    it('finds a header glued to garbage, and one written in another case', () => {
      const { reader, messages, errors } = recorder();
      reader.push(Buffer.from('this is not a frame at all\r\n\r\n{"x":1}'));
      reader.push(Buffer.from('and more noise in between'));
      reader.push(rawFrame('CONTENT-LENGTH: 5\r\n\r\n', 'first'));
      reader.push(Buffer.from('noise glued to the next header'));
      reader.push(frame('second'));
      expect(messages).toEqual(['first', 'second']);
      // One error per episode of lost framing, not one per piece of garbage.
      expect(errors.map((error) => error.code)).toEqual(['PARSE_ERROR', 'PARSE_ERROR']);
    });

    it('steps over stray log lines written between frames without losing a frame', () => {
      const { reader, messages, errors } = recorder();
      reader.push(Buffer.concat([frame('one'), Buffer.from('stray 1\n'), frame('two'), Buffer.from('[info] stray: 2\n'), frame('three')]));
      expect(messages).toEqual(['one', 'two', 'three']);
      expect(errors).toHaveLength(2);
    });

    it('reports once per episode of lost framing, again for the next one', () => {
      const { reader, messages, errors } = recorder();
      reader.push(Buffer.concat([Buffer.from('junk\r\n\r\n'), Buffer.from('Content-Length: x\r\n\r\n'), frame('ok')]));
      reader.push(Buffer.concat([Buffer.from('junk again\r\n\r\n'), frame('ok again')]));
      expect(messages).toEqual(['ok', 'ok again']);
      expect(errors).toHaveLength(2);
    });

    it('bounds the header section: an endless header is a parse error, and the reader recovers after it', () => {
      const { reader, messages, errors } = recorder({ maxHeaderBytes: 64 });
      reader.push(Buffer.from(`X-Endless: ${'y'.repeat(500)}`));
      expect(reader.bufferedBytes).toBeLessThanOrEqual(64);
      reader.push(frame('recovered'));
      expect(messages).toEqual(['recovered']);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.message).toMatch(/header section longer than 64 bytes/);
    });

    it('gives up with a clear reason when no header follows within maxResyncBytes, and then ignores its input', () => {
      const { reader, messages, errors, fatal } = recorder({ maxMessageBytes: 1_000, maxHeaderBytes: 100 });
      reader.push(Buffer.from('Content-Length: ?\r\n\r\n'));
      for (let i = 0; i < 20; i++) reader.push(Buffer.alloc(100, 0x2e));
      expect(errors).toHaveLength(1);
      expect(fatal).toHaveLength(1);
      expect(fatal[0]!.code).toBe('PARSE_ERROR');
      expect(fatal[0]!.message).toMatch(/lost the message framing: no Content-Length header in \d+ bytes/);
      expect(reader.active).toBe(false);
      reader.push(frame('too late'));
      expect(messages).toEqual([]);
      expect(reader.bufferedBytes).toBe(0);
    });

    it('never gives up while the noise stays within maxResyncBytes', () => {
      const { reader, messages, fatal } = recorder({ maxMessageBytes: 1_000, maxHeaderBytes: 100 });
      reader.push(Buffer.from('Content-Length: ?\r\n\r\n'));
      reader.push(Buffer.alloc(1_000, 0x2e));
      reader.push(frame('found'));
      expect(fatal).toEqual([]);
      expect(messages).toEqual(['found']);
    });
  });

  describe('size limit', () => {
    it('defaults to 1 MiB: a body of exactly the limit passes, one byte more is refused', () => {
      const { reader, messages, errors } = recorder();
      expect(reader.maxMessageBytes).toBe(DEFAULT_MAX_MESSAGE_BYTES);
      const atLimit = 'a'.repeat(DEFAULT_MAX_MESSAGE_BYTES);
      reader.push(frame(atLimit));
      reader.push(frame(`${atLimit}b`));
      reader.push(frame('next'));
      expect(messages.map((message) => message.length)).toEqual([DEFAULT_MAX_MESSAGE_BYTES, 4]);
      expect(errors.map((error) => error.code)).toEqual(['PAYLOAD_TOO_LARGE']);
      expect(errors[0]!.data).toEqual({ limit: DEFAULT_MAX_MESSAGE_BYTES, length: DEFAULT_MAX_MESSAGE_BYTES + 1 });
    });

    it('counts the limit in bytes, not characters', () => {
      const { reader, messages, errors } = recorder({ maxMessageBytes: 8 });
      reader.push(frame('🚀🚀')); // 8 bytes
      reader.push(frame('🚀🚀é')); // 10 bytes
      expect(messages).toEqual(['🚀🚀']);
      expect(errors.map((error) => error.code)).toEqual(['PAYLOAD_TOO_LARGE']);
    });

    it('skips a 5 MiB body as it arrives, never holding more than a header, and reads on after it', () => {
      const { reader, messages, errors } = recorder();
      const size = 5 * 1024 * 1024;
      reader.push(frame('before'));
      reader.push(Buffer.from(`Content-Length: ${size}\r\n\r\n`));
      // The refusal is reported as soon as the header is read, before the body arrives.
      expect(errors.map((error) => error.code)).toEqual(['PAYLOAD_TOO_LARGE']);
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      let largestHeld = 0;
      for (let sent = 0; sent < size; sent += chunk.length) {
        reader.push(chunk);
        largestHeld = Math.max(largestHeld, reader.bufferedBytes);
      }
      expect(largestHeld).toBe(0);
      reader.push(frame('after'));
      expect(messages).toEqual(['before', 'after']);
      expect(errors).toHaveLength(1);
    });

    it('holds at most one body within the limit while it is incomplete', () => {
      const { reader } = recorder({ maxMessageBytes: 1_000 });
      const encoded = frame('z'.repeat(900));
      reader.push(encoded.subarray(0, 500));
      expect(reader.bufferedBytes).toBe(900);
      reader.push(encoded.subarray(500));
      expect(reader.bufferedBytes).toBe(0);
    });
  });

  it('stop() drops what it holds and ignores later input', () => {
    const { reader, messages } = recorder();
    const encoded = frame('never');
    reader.push(encoded.subarray(0, 10));
    reader.stop();
    reader.push(encoded.subarray(10));
    expect(messages).toEqual([]);
    expect(reader.bufferedBytes).toBe(0);
  });

  it('stops at once when a handler stops it, even mid-chunk', () => {
    const messages: string[] = [];
    const reader: FrameReader = new FrameReader({
      onMessage: (body) => {
        messages.push(body);
        reader.stop();
      },
      onError: () => {},
      onFatal: () => {},
    });
    reader.push(Buffer.concat([frame('one'), frame('two')]));
    expect(messages).toEqual(['one']);
  });
});

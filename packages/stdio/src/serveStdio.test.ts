import { Buffer } from 'node:buffer';
import { PassThrough } from 'node:stream';
import { ErrorCodes, builtInDomains } from '@lockstep/core';
import { Hub } from '@lockstep/server';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { collectStderr, fixtures, killStarted, spawnNode, tsArgs } from '../test/processes.js';
import { FrameReader, encodeFrame } from './framing.js';
import { serveStdio } from './serveStdio.js';

afterEach(killStarted);

interface Message {
  id?: unknown;
  method?: string;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: unknown };
  params?: Record<string, unknown>;
}

/** Reads every byte of a stream as frames: any stray byte that is not a frame shows up as an error. */
function frameStream(readable: NodeJS.ReadableStream) {
  const messages: Message[] = [];
  const problems: string[] = [];
  const waiters: Array<{ test: (message: Message) => boolean; resolve: (message: Message) => void }> = [];
  const reader = new FrameReader({
    onMessage: (body) => {
      const message = JSON.parse(body) as Message;
      messages.push(message);
      for (const waiter of [...waiters]) {
        if (waiter.test(message)) {
          waiters.splice(waiters.indexOf(waiter), 1);
          waiter.resolve(message);
        }
      }
    },
    onError: (error) => problems.push(error.message),
    onFatal: (error) => problems.push(`fatal: ${error.message}`),
  });
  readable.on('data', (chunk: Buffer) => reader.push(chunk));
  return {
    messages,
    problems,
    /** The first message (already received or still to come) that passes `test`. */
    when(test: (message: Message) => boolean): Promise<Message> {
      const seen = messages.find(test);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.push({ test, resolve }));
    },
  };
}

const request = (id: number, method: string, params: unknown) => encodeFrame(JSON.stringify({ jsonrpc: '2.0', id, method, params }));

describe('serveStdio in a child process', () => {
  it('keeps stdout for frames: stray console.log, console.info and stdout writes go to stderr', async () => {
    const child = spawnNode(tsArgs(fixtures.hubChild), { LOCKSTEP_FIXTURE_STRAY: '1' });
    const stderr = collectStderr(child);
    const wire = frameStream(child.stdout);
    child.stdin.write(request(1, 'hello', { protocol: 1 }));
    await wire.when((message) => message.id === 1);
    child.stdin.write(request(2, 'subscribe', { stream: 'tasks/guarded' }));
    await wire.when((message) => message.id === 2);
    for (let i = 0; i < 20; i++) {
      child.stdin.write(request(10 + i, 'command', { id: `c${i}`, stream: 'tasks/guarded', type: 'task.create', payload: { title: `task ${i} — ü 🚀` } }));
    }
    const last = await wire.when((message) => message.id === 29);
    expect(last.result).toMatchObject({ version: 20 });
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));

    // Every byte on stdout was a frame, every answer arrived, and the strays went to stderr.
    expect(wire.problems).toEqual([]);
    for (let id = 10; id < 30; id++) expect(wire.messages.find((message) => message.id === id)?.result).toMatchObject({ version: id - 9 });
    const events = wire.messages.filter((message) => message.method === 'events');
    expect(events.flatMap((message) => (message.params!['events'] as Array<{ version: number }>).map((event) => event.version))).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    expect(stderr.text()).toContain('stray 1\n');
    expect(stderr.text()).toContain('stray info 22\n');
    expect(stderr.text()).toContain('stray write 22\n');
  });

  it('writes its frames to stdout also when the process guarded stdout before it served', async () => {
    const child = spawnNode(tsArgs(fixtures.hubChild), { LOCKSTEP_FIXTURE_STRAY: '1', LOCKSTEP_FIXTURE_GUARD_FIRST: '1' });
    const stderr = collectStderr(child);
    const wire = frameStream(child.stdout);
    child.stdin.write(request(1, 'hello', { protocol: 1 }));
    const hello = await wire.when((message) => message.id === 1);
    expect(hello.result).toMatchObject({ protocol: 1 });
    child.stdin.write(request(2, 'ping', {}));
    await wire.when((message) => message.id === 2);
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
    expect(wire.problems).toEqual([]);
    expect(stderr.text()).not.toContain('"jsonrpc"');
    expect(stderr.text()).toContain('stray 1\n');
  });

  it('(control) without the guard, the same strays corrupt the stream', async () => {
    const child = spawnNode(tsArgs(fixtures.hubChild), { LOCKSTEP_FIXTURE_STRAY: '1', LOCKSTEP_FIXTURE_GUARD: '0' });
    const wire = frameStream(child.stdout);
    child.stdin.write(request(1, 'hello', { protocol: 1 }));
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
    expect(wire.problems.length).toBeGreaterThan(0);
  });

  it('answers an unreadable message with a JSON-RPC error with id null, and goes on serving', async () => {
    const child = spawnNode(tsArgs(fixtures.hubChild), { LOCKSTEP_FIXTURE_MAX_BYTES: '2048' });
    const wire = frameStream(child.stdout);
    child.stdin.write(request(1, 'hello', { protocol: 1 }));
    await wire.when((message) => message.id === 1);

    child.stdin.write(request(2, 'ping', { padding: 'x'.repeat(4_096) }));
    const tooLarge = await wire.when((message) => message.error?.code === ErrorCodes.PAYLOAD_TOO_LARGE);
    expect(tooLarge).toMatchObject({ id: null, error: { data: { limit: 2048 } } });

    child.stdin.write('Content-Length: twelve\r\n\r\n{"jsonrpc":"2.0","id":3,"method":"ping"}');
    const parseError = await wire.when((message) => message.error?.code === ErrorCodes.PARSE_ERROR);
    expect(parseError).toMatchObject({ id: null, error: { message: 'invalid Content-Length "twelve"' } });

    child.stdin.write(encodeFrame('{"this is": not json'));
    const jsonError = await wire.when((message) => message.error?.code === ErrorCodes.PARSE_ERROR && message !== parseError);
    expect(jsonError.id).toBeNull();

    child.stdin.write(request(4, 'ping', {}));
    expect((await wire.when((message) => message.id === 4)).result).toMatchObject({ time: expect.any(Number) });
    expect(wire.problems).toEqual([]);
  });

  it('closes the connection and lets the process exit when the host closes stdin', async () => {
    const child = spawnNode(tsArgs(fixtures.hubChild));
    const stderr = collectStderr(child);
    const wire = frameStream(child.stdout);
    child.stdin.write(request(1, 'hello', { protocol: 1 }));
    await wire.when((message) => message.id === 1);
    child.stdin.end();
    const [code] = await new Promise<[number | null]>((resolve) => child.once('exit', (exitCode) => resolve([exitCode])));
    expect(code).toBe(0);
    expect(stderr.text()).toContain('connection over (peer closed the stream)');
  });
});

describe('serveStdio in process', () => {
  it('serves a hub over given streams and resolves closed with the reason', async () => {
    const hub = new Hub({ domains: builtInDomains });
    onTestFinished(() => hub.close());
    const input = new PassThrough();
    const output = new PassThrough();
    const wire = frameStream(output);
    const server = serveStdio(hub, { input, output });
    input.write(request(1, 'hello', { protocol: 1 }));
    expect((await wire.when((message) => message.id === 1)).result).toMatchObject({ protocol: 1, serverId: hub.serverId });
    expect(hub.connectionCount).toBe(1);
    server.close('done here');
    expect(await server.closed).toBe('done here');
    expect(hub.connectionCount).toBe(0);
    expect(output.writableEnded).toBe(true);
  });

  it('refuses a binary codec', () => {
    const hub = new Hub({ domains: builtInDomains });
    onTestFinished(() => hub.close());
    const binary = { name: 'bytes', binary: true, encode: () => new Uint8Array(), decode: () => undefined };
    expect(() => serveStdio(hub, { input: new PassThrough(), output: new PassThrough(), codec: binary })).toThrow(/binary/);
  });
});

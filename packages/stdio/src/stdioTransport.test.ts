import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { LockstepError, Transport, TransportState } from '@lockstep/core';
import { describeTransportConformance } from '@lockstep/testkit';
import { filter, firstValueFrom, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { fixtures, killAndWait, killStarted, spawnNode, spawnRelay, tsArgs } from '../test/processes.js';
import { encodeFrame } from './framing.js';
import { createStdioTransport } from './stdioTransport.js';

afterEach(killStarted);

function closedState(transport: Transport): Promise<Extract<TransportState, { status: 'closed' }>> {
  return firstValueFrom(transport.state.pipe(filter((state): state is Extract<TransportState, { status: 'closed' }> => state.status === 'closed')));
}

// Real OS pipes, as between a host and its sidecar: each direction goes through a relay process
// (`process.stdin.pipe(process.stdout)`), so each end writes into a child's stdin pipe and reads from
// another child's stdout pipe — the same stream types, descriptors and EOF behaviour as stdio.
describeTransportConformance(
  'stdio transport over OS pipes',
  () => {
    const up = spawnRelay();
    const down = spawnRelay();
    return {
      client: createStdioTransport({ input: down.stdout, output: up.stdin }),
      server: createStdioTransport({ input: up.stdout, output: down.stdin }),
      dispose: async () => {
        await Promise.all([killAndWait(up), killAndWait(down)]);
      },
    };
  },
  { binary: false },
);

// The same transport over one duplex used both ways (a Unix domain socket): close() half-closes and
// drains until the peer ends its side.
describeTransportConformance(
  'stdio transport over a Unix domain socket',
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lockstep-stdio-'));
    const path = join(dir, 'sock');
    let onConnection: (socket: Socket) => void = () => {};
    const accepted = new Promise<Socket>((resolve) => (onConnection = resolve));
    const server: Server = createServer((socket) => onConnection(socket));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const clientSocket = connect(path);
    const serverSocket = await accepted;
    return {
      client: createStdioTransport({ input: clientSocket, output: clientSocket }),
      server: createStdioTransport({ input: serverSocket, output: serverSocket }),
      dispose: async () => {
        clientSocket.destroy();
        serverSocket.destroy();
        // Removed first: closing the server may wait on sockets, and the directory must not outlive the case.
        rmSync(dir, { recursive: true, force: true });
        await new Promise((resolve) => server.close(resolve));
      },
    };
  },
  { binary: false },
);

describe('stdio transport', () => {
  it('refuses a binary frame by answering false, writes nothing and stays open', async () => {
    const output = new PassThrough();
    const written: Buffer[] = [];
    output.on('data', (chunk: Buffer) => written.push(chunk));
    const transport = createStdioTransport({ input: new PassThrough(), output });
    expect(transport.send(Uint8Array.of(1, 2, 3))).toBe(false);
    expect(transport.send('text')).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    expect(Buffer.concat(written).toString()).toBe('Content-Length: 4\r\n\r\ntext');
    expect(await firstValueFrom(transport.state)).toEqual({ status: 'open' });
    transport.close();
  });

  it('closes when its input ends, after delivering the frames before the end', async () => {
    const input = new PassThrough();
    const transport = createStdioTransport({ input, output: new PassThrough() });
    const frames = firstValueFrom(transport.frames.pipe(toArray()));
    input.write(encodeFrame('last'));
    input.end();
    expect(await frames).toEqual(['last']);
    expect(await closedState(transport)).toMatchObject({ reason: 'peer closed the stream' });
  });

  it('starts closed over an input that has already ended', async () => {
    const input = new PassThrough();
    input.destroy();
    const transport = createStdioTransport({ input, output: new PassThrough() });
    expect(await closedState(transport)).toMatchObject({ reason: 'input already ended' });
    expect(transport.send('x')).toBe(false);
  });

  it('reports framing errors through the hook and goes on reading', async () => {
    const input = new PassThrough();
    const errors: LockstepError[] = [];
    const transport = createStdioTransport({ input, output: new PassThrough(), maxMessageBytes: 10, onFramingError: (error) => errors.push(error) });
    const frames = firstValueFrom(transport.frames.pipe(take(2), toArray()));
    input.write(Buffer.concat([encodeFrame('ok'), encodeFrame('far too large'), Buffer.from('Content-Length: x\r\n\r\n'), encodeFrame('ok again')]));
    expect(await frames).toEqual(['ok', 'ok again']);
    expect(errors.map((error) => error.code)).toEqual(['PAYLOAD_TOO_LARGE', 'PARSE_ERROR']);
    transport.close();
  });

  it('closes with the reason when the framing is lost for good', async () => {
    const input = new PassThrough();
    const transport = createStdioTransport({ input, output: new PassThrough(), maxMessageBytes: 100, maxHeaderBytes: 64 });
    input.write('Content-Length: ?\r\n\r\n');
    input.write(Buffer.alloc(1_000, 0x20));
    expect((await closedState(transport)).reason).toMatch(/lost the message framing/);
  });

  it('takes bufferedAmount from the output', () => {
    const output = new PassThrough({ highWaterMark: 16 });
    const transport = createStdioTransport({ input: new PassThrough(), output });
    transport.send('x'.repeat(100));
    expect(transport.bufferedAmount).toBe(output.writableLength);
    expect(transport.bufferedAmount).toBeGreaterThan(0);
    transport.close();
  });
});

describe('writing to a peer that died', () => {
  it('closes the transport with the EPIPE reason instead of crashing the process', async () => {
    // The child closes the reading end of its stdin pipe and says so: every write into it is EPIPE.
    const child = spawnNode(['-e', 'require("fs").closeSync(0); process.stdout.write("closed"); setInterval(() => {}, 1000)']);
    await new Promise((resolve) => child.stdout.once('data', resolve));
    const transport = createStdioTransport({ input: new PassThrough(), output: child.stdin });
    const closed = closedState(transport);
    // A write is accepted (queued) before the pipe reports the broken peer.
    for (let i = 0; i < 100 && transport.send(`frame ${i}`); i++) await new Promise((resolve) => setImmediate(resolve));
    expect((await closed).reason).toMatch(/^output error: .*EPIPE/);
    expect(transport.send('after')).toBe(false);
  });

  it('closes at once when the output was already closed (the child is gone)', async () => {
    const child = spawnNode(['-e', 'setInterval(() => {}, 1000)']);
    await new Promise((resolve) => child.once('spawn', resolve));
    await killAndWait(child);
    const transport = createStdioTransport({ input: new PassThrough(), output: child.stdin });
    const closed = closedState(transport);
    expect(transport.send('into the void')).toBe(false);
    expect((await closed).reason).toBe('output closed');
  });

  it('survives a hub child killed in the middle of a write burst', async () => {
    const child = spawnNode(tsArgs(fixtures.hubChild));
    const transport = createStdioTransport({ input: child.stdout, output: child.stdin });
    const closed = closedState(transport);
    const hello = firstValueFrom(transport.frames);
    transport.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'hello', params: { protocol: 1 } }));
    await hello;
    process.kill(child.pid!, 'SIGKILL');
    let sent = 0;
    while (transport.send(JSON.stringify({ jsonrpc: '2.0', id: 2 + sent, method: 'ping', params: {} }))) {
      sent++;
      if (sent % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(typeof (await closed).reason).toBe('string');
    expect(transport.send('after')).toBe(false);
  });

  it('a hub child whose host stopped reading its stdout exits cleanly instead of crashing', async () => {
    const child = spawnNode(tsArgs(fixtures.hubChild));
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => (stderr += text));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // The host throws its read end away, then keeps talking: the child's answers hit a broken pipe.
    child.stdout.destroy();
    for (let i = 0; i < 50; i++) child.stdin.write(encodeFrame(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'ping', params: {} })));
    child.stdin.end();
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/connection over \(output error: write EPIPE\)/);
    expect(stderr).not.toMatch(/Unhandled|\n\s+at /);
  });
});

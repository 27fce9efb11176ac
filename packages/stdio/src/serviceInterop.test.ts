/**
 * Services with vscode-jsonrpc as the other peer, over stdio framing: a peer written with it calls a
 * hub's service, answers the hub's calls of a service it announced, and cancels both ways with its own
 * `$/cancelRequest` — the LSP conventions services follow (`CANCELLED` is LSP's `RequestCancelled`).
 */
import { PassThrough } from 'node:stream';
import { ErrorCodes, defineService, method } from '@lockstep/core';
import { Hub } from '@lockstep/server';
import {
  CancellationTokenSource,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
  createMessageConnection,
  type CancellationToken,
} from 'vscode-jsonrpc/node';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as z from 'zod';
import { serveStdio } from './serveStdio.js';

const orchestrate = defineService('orchestrate', '1.2.0', {
  route: method({ params: z.object({ command: z.string() }), result: z.object({ agent: z.string() }) }),
  think: method({ params: z.object({}), result: z.object({}) }),
});
const manager = defineService('manager', '1.4.0', {
  createPane: method({ params: z.object({ type: z.literal('terminal'), command: z.string() }), result: z.object({ paneId: z.string() }) }),
  wait: method({ params: z.object({}), result: z.object({}) }),
});

function setup() {
  const hub = new Hub({ domains: [] });
  const signals: AbortSignal[] = [];
  hub.serve(orchestrate, {
    route: ({ command }) => ({ agent: `agent-for-${command}` }),
    think: (_params, { signal }) =>
      new Promise((_resolve, reject) => {
        signals.push(signal);
        signal.addEventListener('abort', () => reject(new Error('stopped thinking')));
      }),
  });
  const toHub = new PassThrough();
  const fromHub = new PassThrough();
  serveStdio(hub, { input: toHub, output: fromHub, guardConsole: false });
  const connection = createMessageConnection(new StreamMessageReader(fromHub), new StreamMessageWriter(toHub));
  const cancelled: boolean[] = [];
  connection.onRequest('manager.createPane', (params: { command: string }) => ({ paneId: `pane:${params.command}` }));
  connection.onRequest(
    'manager.wait',
    (_params: unknown, token: CancellationToken) => new Promise((resolve) => token.onCancellationRequested(() => resolve(cancelled.push(true)))),
  );
  connection.listen();
  onTestFinished(async () => {
    connection.dispose();
    await hub.close();
  });
  return { hub, connection, signals, cancelled };
}

describe('services with a vscode-jsonrpc peer over stdio', () => {
  it('calls a hub service and answers the hub’s calls of the service it announced', async () => {
    const { hub, connection } = setup();
    const hello = await connection.sendRequest<{ services: unknown[] }>('hello', {
      protocol: 1,
      clientId: 'vscode-manager',
      services: [{ name: 'manager', version: '1.4.0' }],
    });
    expect(hello.services).toEqual([{ name: 'orchestrate', version: '1.2.0' }]);
    expect(await connection.sendRequest('orchestrate.route', { command: 'run tests' })).toEqual({ agent: 'agent-for-run tests' });
    await expect(hub.call({ clientId: 'vscode-manager' }, manager.createPane, { type: 'terminal', command: 'npm test' })).resolves.toEqual({
      paneId: 'pane:npm test',
    });
    // vscode-jsonrpc answers a method it has no handler for with -32601, which the hub passes on.
    const unknown = defineService('manager', '1.4.0', { missing: method({ params: z.object({}), result: z.object({}) }) });
    await expect(hub.call({ clientId: 'vscode-manager' }, unknown.missing, {})).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND' });
  });

  it('cancels both ways with $/cancelRequest: its token cancels the hub handler, the hub’s timeout cancels its token', async () => {
    const { hub, connection, signals, cancelled } = setup();
    await connection.sendRequest('hello', { protocol: 1, clientId: 'vscode-manager', services: [{ name: 'manager', version: '1.4.0' }] });

    const source = new CancellationTokenSource();
    const thinking = connection.sendRequest('orchestrate.think', {}, source.token).catch((error: unknown) => error);
    await expect.poll(() => signals.length).toBe(1);
    source.cancel();
    const error = await thinking;
    expect(error).toBeInstanceOf(ResponseError);
    expect((error as ResponseError<unknown>).code).toBe(ErrorCodes.CANCELLED);
    expect(signals[0]!.aborted).toBe(true);

    await expect(hub.call({ clientId: 'vscode-manager' }, manager.wait, {}, { timeoutMs: 50 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect.poll(() => cancelled).toEqual([true]);
  });
});

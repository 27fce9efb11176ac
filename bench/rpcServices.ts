/**
 * What bench/rpc.bench.ts and its peer process share: seed 004's two calls as services, the answers
 * every peer gives (Lockstep's and vscode-jsonrpc's alike), and vscode-jsonrpc over a WebSocket.
 */
import { defineService, method } from '@lockstep/core';
import {
  AbstractMessageReader,
  AbstractMessageWriter,
  createMessageConnection,
  type DataCallback,
  type Disposable,
  type Message,
  type MessageConnection,
} from 'vscode-jsonrpc/node';
import type WebSocket from 'ws';
import * as z from 'zod';

const paneType = z.enum(['terminal', 'editor']);

/** Served by the hub (the orchestrator), called by the client (the manager). */
export const benchOrchestrate = defineService('orchestrate', '1.2.0', {
  route: method({ params: z.object({ command: z.string() }), result: z.object({ agent: z.string(), paneType }) }),
});

/** Served by the client (the manager), called by the hub. */
export const benchManager = defineService('manager', '1.4.0', {
  createPane: method({ params: z.object({ type: paneType, command: z.string() }), result: z.object({ paneId: z.string() }) }),
});

export const routeAnswer = (command: string) => ({ agent: command.includes('test') ? 'tester' : 'generalist', paneType: 'terminal' as const });
export const createPaneAnswer = (command: string) => ({ paneId: `pane-${command.length}` });

/**
 * vscode-jsonrpc over a WebSocket: one JSON-RPC message per text message, as vscode-ws-jsonrpc does
 * (vscode-jsonrpc ships stream and socket transports, not this one). The baseline for the WebSocket rows.
 */
export function webSocketMessageConnection(socket: WebSocket): MessageConnection {
  return createMessageConnection(new WebSocketMessageReader(socket), new WebSocketMessageWriter(socket));
}

class WebSocketMessageReader extends AbstractMessageReader {
  #callback: DataCallback | undefined;

  constructor(socket: WebSocket) {
    super();
    socket.on('message', (data) => this.#callback?.(JSON.parse((data as Buffer).toString()) as Message));
    socket.on('close', () => this.fireClose());
    socket.on('error', (error) => this.fireError(error));
  }

  listen(callback: DataCallback): Disposable {
    this.#callback = callback;
    return { dispose: () => (this.#callback = undefined) };
  }
}

class WebSocketMessageWriter extends AbstractMessageWriter {
  constructor(private readonly socket: WebSocket) {
    super();
  }

  write(message: Message): Promise<void> {
    this.socket.send(JSON.stringify(message));
    return Promise.resolve();
  }

  end(): void {}
}

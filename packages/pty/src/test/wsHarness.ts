/** A hub with the terminal extension on a real WebSocket server, and raw `ws` viewers of it. */
import { builtInDomains, LockstepError, type WireError } from '@lockstep/core';
import { Hub, type HubOptions } from '@lockstep/server';
import { createWebSocketServer, type LockstepWebSocketServer } from '@lockstep/ws/server';
import WebSocket from 'ws';
import type { AttachResult, ExitNotification, OutputNotification, ResizedNotification } from '../protocol.js';
import { createTerminalExtension, type TerminalExtension, type TerminalExtensionOptions } from '../terminalExtension.js';
import { waitFor, waitGone } from './helpers.js';

export interface TestHub {
  hub: Hub;
  extension: TerminalExtension;
  server: LockstepWebSocketServer;
  url: string;
  errors: Array<{ error: unknown; context: string }>;
  /** Closes the hub (which closes the extension: every terminal is killed), then the server; checks every pid is gone. */
  close(): Promise<void>;
}

export async function startHub(
  options: Omit<TerminalExtensionOptions, 'hub'> = {},
  hubOptions: Omit<HubOptions, 'domains' | 'services'> = {},
): Promise<TestHub> {
  const errors: TestHub['errors'] = [];
  const onError = (error: unknown, context: string) => errors.push({ error, context });
  let hub: Hub | undefined;
  const extension = createTerminalExtension({ onError, ...options, hub: () => hub! });
  hub = new Hub({ domains: builtInDomains, services: [extension], onError, ...hubOptions });
  const server = createWebSocketServer(hub, { port: 0, onError });
  await server.ready;
  const started = hub;
  return {
    hub: started,
    extension,
    server,
    url: `ws://127.0.0.1:${server.address().port}`,
    errors,
    async close() {
      const pids = extension.terminals.list().map((terminal) => terminal.pid);
      await started.close();
      await server.close();
      await waitGone(pids);
    },
  };
}

/**
 * A viewer with no Lockstep code: a `ws` socket speaking lockstep/1 JSON by hand, as a browser or a
 * Python client would. It checks every `terminal.output` it gets: offsets must continue exactly where
 * the previous chunk ended, unless the chunk is marked `truncated`.
 */
export class Viewer {
  readonly outputs: OutputNotification[] = [];
  readonly exits: ExitNotification[] = [];
  readonly resized: ResizedNotification[] = [];
  readonly notifications: Array<{ method: string; params: unknown }> = [];
  /** Contiguity violations (must stay empty). */
  readonly gaps: string[] = [];
  readonly #chunks = new Map<string, Buffer[]>();
  readonly #next = new Map<string, number>();
  readonly #pending = new Map<number, { resolve(result: unknown): void; reject(error: unknown): void }>();
  #nextId = 1;
  readonly closed: Promise<void>;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => this.#onMessage(JSON.parse((data as Buffer).toString())));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  /** Opens a socket and says hello (unless `hello` is false). */
  static async connect(url: string, hello: { clientId?: string; token?: string } | false = {}): Promise<Viewer> {
    const socket = new WebSocket(url, ['lockstep.v1.json']);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    socket.on('error', () => {});
    const viewer = new Viewer(socket);
    if (hello !== false) await viewer.request('hello', { protocol: 1, ...hello });
    return viewer;
  }

  /**
   * Sends a request. `onResult` runs as soon as the answer is read — before any frame after it:
   * `ws` emits every message of one socket read in a row, ahead of promise continuations.
   */
  request<T = unknown>(method: string, params: unknown, onResult?: (result: T) => void): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const settle = (result: unknown) => {
        onResult?.(result as T);
        resolve(result as T);
      };
      this.#pending.set(id, { resolve: settle, reject });
      this.socket.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
    });
  }

  /** Attaches and remembers where output starts (`result.offset`). */
  attach(terminalId: string, since?: number): Promise<AttachResult> {
    const params = since === undefined ? { terminalId } : { terminalId, since };
    return this.request<AttachResult>('terminal.attach', params, (result) => this.#next.set(terminalId, result.offset));
  }

  detach(terminalId: string): Promise<unknown> {
    return this.request('terminal.detach', { terminalId });
  }

  /** The offset right after the last byte received of a terminal. */
  next(terminalId: string): number {
    return this.#next.get(terminalId) ?? 0;
  }

  /** Every byte received of a terminal, in order. */
  bytes(terminalId: string): Buffer {
    return Buffer.concat(this.#chunks.get(terminalId) ?? []);
  }

  text(terminalId: string): string {
    return this.bytes(terminalId).toString('utf8');
  }

  exitsOf(terminalId: string): ExitNotification[] {
    return this.exits.filter((exit) => exit.terminalId === terminalId);
  }

  async waitForExit(terminalId: string): Promise<ExitNotification> {
    await waitFor(() => this.exitsOf(terminalId).length > 0, `terminal.exit of ${terminalId}`);
    return this.exitsOf(terminalId)[0]!;
  }

  async waitForBytes(terminalId: string, count: number): Promise<void> {
    await waitFor(() => this.bytes(terminalId).length >= count, `${count} bytes of ${terminalId}`);
  }

  /** Stops reading from the socket (the kernel buffers fill, then the server's send buffer grows). */
  stall(): void {
    (this.socket as unknown as { _socket: { pause(): void } })._socket.pause();
  }

  resume(): void {
    (this.socket as unknown as { _socket: { resume(): void } })._socket.resume();
  }

  close(): Promise<void> {
    this.socket.close();
    return this.closed;
  }

  #onMessage(message: { id?: number; result?: unknown; error?: WireError; method?: string; params?: unknown }): void {
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) pending?.reject(LockstepError.fromWire(message.error));
      else pending?.resolve(message.result);
      return;
    }
    if (!message.method) return;
    this.notifications.push({ method: message.method, params: message.params });
    if (message.method === 'terminal.output') {
      const output = message.params as OutputNotification;
      this.outputs.push(output);
      const expected = this.#next.get(output.terminalId);
      if (expected === undefined) this.gaps.push(`output of ${output.terminalId} before its attach answer`);
      else if (output.truncated ? output.offset <= expected : output.offset !== expected) {
        this.gaps.push(`${output.terminalId}: offset ${output.offset} after ${expected}${output.truncated ? ' (truncated)' : ''}`);
      }
      const data = Buffer.from(output.data, 'base64');
      let chunks = this.#chunks.get(output.terminalId);
      if (!chunks) this.#chunks.set(output.terminalId, (chunks = []));
      chunks.push(data);
      this.#next.set(output.terminalId, output.offset + data.length);
    } else if (message.method === 'terminal.exit') {
      this.exits.push(message.params as ExitNotification);
    } else if (message.method === 'terminal.resized') {
      this.resized.push(message.params as ResizedNotification);
    }
  }
}

/** Expects a LockstepError with this code. */
export async function rejection(promise: Promise<unknown>): Promise<LockstepError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LockstepError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

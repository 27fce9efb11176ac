/**
 * Test helpers for the reference server's suites: a server on a free port and a temporary data
 * directory (closed and removed after each test), JSON requests, a Server-Sent Events reader, and a
 * raw lockstep/1 peer over WebSocket.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jsonCodec, type Transport } from '@lockstep/core';
import { TestPeer } from '@lockstep/core/testing';
import { webSocketTransport } from '@lockstep/ws';
import { onTestFinished } from 'vitest';
import { startReferenceServer, type ReferenceServer, type ReferenceServerOptions } from './server.js';
import { spawnReferenceServer, type ServerProcess } from './serverProcess.js';

/** A directory removed when the current test finishes. */
export async function tempDir(prefix = 'lockstep-reference-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** The token of every test server (unless a test sets `auth`): presented by `call`, `SseReader` and `RawPeer`. */
export const TEST_TOKEN = 'test-token-0123456789abcdef';

/** The token each running test server expects, by its `url` and `wsUrl`. */
const tokens = new Map<string, string>();

/** The `Authorization` header for a server started by {@link startTestServer} (none for others, or one without a token). */
export function authHeaders(base: string): Record<string, string> {
  const token = tokens.get(base);
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/**
 * Starts a server on a free port with its file store in a fresh directory (unless `store` or
 * `dataDir` say otherwise), closed when the current test finishes. Lines it logs are collected. Its
 * token is {@link TEST_TOKEN} unless `auth` says otherwise; `call`, `SseReader` and `RawPeer`
 * present it unless given an `Authorization` header of their own or `anonymous`.
 */
export async function startTestServer(options: ReferenceServerOptions = {}): Promise<ReferenceServer & { lines: string[] }> {
  const lines: string[] = [];
  const dataDir = options.dataDir ?? (options.store === undefined ? await tempDir() : undefined);
  const server = await startReferenceServer({
    port: 0,
    shell: { file: '/bin/sh', args: [] },
    log: (line) => lines.push(line),
    auth: { token: TEST_TOKEN },
    runtimeDir: false,
    ...(dataDir !== undefined && { dataDir }),
    ...options,
  });
  if (server.token !== undefined) {
    tokens.set(server.url, server.token);
    tokens.set(server.wsUrl, server.token);
  }
  onTestFinished(async () => {
    tokens.delete(server.url);
    tokens.delete(server.wsUrl);
    await server.close();
  });
  return Object.assign(server, { lines });
}

/** `headers` with the server's token added, unless they carry an Authorization header or the caller is anonymous. */
function withToken(base: string, headers: Record<string, string> = {}, anonymous = false): Record<string, string> {
  if (anonymous || Object.keys(headers).some((name) => name.toLowerCase() === 'authorization')) return headers;
  return { ...authHeaders(base), ...headers };
}

export interface HttpAnswer {
  status: number;
  headers: IncomingMessage['headers'];
  /** The body parsed as JSON (undefined when empty or not JSON). */
  json: any;
  text: string;
  /** The raw body bytes (compressed bodies stay compressed). */
  body: Buffer;
}

/** One HTTP request with node:http (no connection reuse, so nothing lingers between tests). */
export function call(
  base: string,
  method: string,
  path: string,
  options: {
    body?: unknown;
    raw?: string | Buffer;
    headers?: Record<string, string>;
    /** Sent in 16 KiB chunks with `Transfer-Encoding: chunked` and no `Content-Length`. */
    chunked?: boolean;
    /** Without the test server's token. */
    anonymous?: boolean;
  } = {},
): Promise<HttpAnswer> {
  const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  const headers: Record<string, string> = {
    Connection: 'close',
    ...(options.body !== undefined && { 'Content-Type': 'application/json' }),
    ...withToken(base, options.headers, options.anonymous),
  };
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text, body: raw });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.chunked && body !== undefined) {
      const bytes = Buffer.from(body);
      for (let at = 0; at < bytes.length; at += 16 * 1024) req.write(bytes.subarray(at, at + 16 * 1024));
      req.end();
    } else {
      req.end(body);
    }
  });
}

/** Polls until `check` answers true (or throws after `timeoutMs`). */
export async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface SseMessage {
  id?: string;
  event: string;
  data: any;
}

/** Reads a `text/event-stream` response: every event parsed, comments (heartbeats) counted. */
export class SseReader {
  readonly messages: SseMessage[] = [];
  comments = 0;
  status = 0;
  headers: IncomingMessage['headers'] = {};
  readonly #response: Promise<IncomingMessage>;
  #buffer = '';
  #ended = false;
  #destroy: () => void = () => {};

  constructor(base: string, path: string, headers: Record<string, string> = {}, options: { anonymous?: boolean } = {}) {
    this.#response = new Promise((resolve, reject) => {
      const req = httpRequest(`${base}${path}`, { headers: { Accept: 'text/event-stream', ...withToken(base, headers, options.anonymous) } }, (res) => {
        this.status = res.statusCode ?? 0;
        this.headers = res.headers;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => this.#feed(chunk));
        res.on('end', () => (this.#ended = true));
        res.on('error', () => (this.#ended = true));
        resolve(res);
      });
      req.on('error', reject);
      req.end();
      this.#destroy = () => req.destroy();
    });
    onTestFinished(() => this.close());
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Resolves with the response once its headers have arrived. */
  opened(): Promise<IncomingMessage> {
    return this.#response;
  }

  /** The events that are not `snapshot`s, as their data. */
  get events(): any[] {
    return this.messages.filter((message) => message.event === 'message').map((message) => message.data);
  }

  async waitFor(check: (reader: this) => boolean, what: string): Promise<void> {
    await until(() => check(this), what);
  }

  close(): void {
    this.#destroy();
  }

  #feed(chunk: string): void {
    this.#buffer += chunk;
    let end: number;
    while ((end = this.#buffer.indexOf('\n\n')) >= 0) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      const message: Partial<SseMessage> & { lines: string[] } = { lines: [] };
      let comment = false;
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) comment = true;
        else if (line.startsWith('id: ')) message.id = line.slice(4);
        else if (line.startsWith('event: ')) message.event = line.slice(7);
        else if (line.startsWith('data: ')) message.lines.push(line.slice(6));
      }
      if (comment && message.lines.length === 0) this.comments++;
      else if (message.lines.length > 0)
        this.messages.push({
          ...(message.id !== undefined && { id: message.id }),
          event: message.event ?? 'message',
          data: JSON.parse(message.lines.join('\n')),
        });
    }
  }
}

/** A bare lockstep/1 peer over a real WebSocket: requests answered by id, notifications collected. */
export class RawPeer {
  readonly #peer: TestPeer;

  private constructor(transport: Transport) {
    // No timeout of its own, as before: the test's timeout decides.
    this.#peer = new TestPeer(transport, { codec: jsonCodec, timeoutMs: false });
  }

  /** The notifications (and requests with a string id) received so far. */
  get notifications(): Array<{ method: string; params: any }> {
    return this.#peer.received.filter((m) => typeof m.id !== 'number' && m.method).map((m) => ({ method: m.method!, params: m.params }));
  }

  static async connect(wsUrl: string, headers: Record<string, string> = {}, options: { anonymous?: boolean } = {}): Promise<RawPeer> {
    const peer = new RawPeer(webSocketTransport(wsUrl, { headers: withToken(wsUrl, headers, options.anonymous) }));
    onTestFinished(() => peer.close());
    await peer.request('hello', { protocol: 1 });
    return peer;
  }

  /** The result, or a rejection with the LockstepError the hub answered. */
  request(method: string, params: unknown): Promise<any> {
    return this.#peer.request(method, params);
  }

  /** The terminal output received so far, decoded. */
  terminalText(terminalId: string): string {
    return Buffer.concat(
      this.notifications
        .filter((n) => n.method === 'terminal.output' && n.params.terminalId === terminalId)
        .map((n) => Buffer.from(n.params.data as string, 'base64')),
    ).toString('utf8');
  }

  close(): void {
    this.#peer.transport.close();
  }
}

/**
 * `pnpm start` as a user runs it, in a child process, in a scratch folder of its own (data, runtime
 * directory, a project folder as its working directory and HOME), with a token of its own and bash
 * for its terminals; stopped and removed when the test finishes.
 */
export async function scratchServerProcess(prefix: string): Promise<ServerProcess> {
  const root = await mkdtemp(join(tmpdir(), prefix));
  onTestFinished(() => rm(root, { recursive: true, force: true }));
  const home = join(root, 'project');
  await mkdir(home);
  const { LOCKSTEP_TOKEN: _, ...inherited } = process.env;
  const server = await spawnReferenceServer({
    dataDir: join(root, 'data'),
    cwd: home,
    env: { ...inherited, LOCKSTEP_RUNTIME_DIR: join(root, 'run'), SHELL: '/bin/bash', HOME: home },
  });
  onTestFinished(() => server.stop());
  return server;
}

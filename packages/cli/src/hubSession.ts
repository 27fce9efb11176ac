import { createClient, type ClientStatus, type LockstepClient, type StreamStatus, type SyncedStream } from '@lockstep/client';
import { LockstepError, type AnyDomain } from '@lockstep/core';
import { webSocketConnector } from '@lockstep/ws';
import { ExitCodes, type ExitCode } from './exitCodes.js';
import type { HubOptions } from './hubOptions.js';

/** Where a client command writes. */
export interface HubIo {
  out: (line: string) => void;
  err: (line: string) => void;
  /**
   * Shows (or, with '', clears) a one-line status on an interactive terminal — the process passes
   * it only when stderr is a TTY; `--json` turns it off.
   */
  status?: ((text: string) => void) | undefined;
  stopSignal: Promise<string>;
}

/**
 * Why a client command ends without its result. `code` is a hub error code (`COMMAND_REJECTED`,
 * `UNAUTHORIZED`, …) or one of the CLI's own: `CONNECT_FAILED`, `TIMEOUT`, `INTERRUPTED`.
 */
export class HubFailure extends Error {
  override readonly name = 'HubFailure';

  constructor(
    readonly exitCode: ExitCode,
    readonly code: string,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
  }

  /** A refusal from the hub (a command, a subscription or the handshake): exit code 1 with its code. */
  static refusal(error: LockstepError): HubFailure {
    return new HubFailure(ExitCodes.failed, error.code, error.message, error.data);
  }
}

/** Hello refusals worth no retry: the same credentials and protocol will be refused again. */
const FINAL_HELLO_CODES: ReadonlySet<string> = new Set(['UNAUTHORIZED', 'FORBIDDEN', 'UNSUPPORTED_PROTOCOL', 'INVALID_PARAMS']);

/** Opens a client of the hub at `hub.server`; reconnects quickly, as a person waits at the prompt. */
export function openClient(hub: HubOptions): LockstepClient {
  const token = hub.token;
  return createClient({
    // The token goes both at the upgrade (servers that authenticate there) and in hello (hubs that do).
    connect: webSocketConnector(hub.server, token === undefined ? {} : { token }),
    ...(token === undefined ? {} : { token }),
    backoff: { initialMs: 100, maxMs: 1_000 },
    requestTimeoutMs: hub.timeoutMs,
  });
}

/**
 * A connection failure that retrying will not fix, from the client's last error: a hello refusal,
 * or an HTTP answer to the WebSocket upgrade (the `ws` library reports it as "Unexpected server
 * response: 401").
 */
function finalConnectFailure(error: Error | undefined, server: string): HubFailure | undefined {
  if (error instanceof LockstepError) return FINAL_HELLO_CODES.has(error.code) ? HubFailure.refusal(error) : undefined;
  const status = /Unexpected server response: (\d{3})/.exec(error?.message ?? '')?.[1];
  switch (status) {
    case '401':
      return new HubFailure(ExitCodes.failed, 'UNAUTHORIZED', `the server refused the connection: 401 (a --token it accepts is needed)`);
    case '403':
      return new HubFailure(ExitCodes.failed, 'FORBIDDEN', `the server refused the connection: 403`);
    case '400':
    case '404':
    case '426':
      return new HubFailure(ExitCodes.unreachable, 'CONNECT_FAILED', `no Lockstep hub at ${server}: the server answered ${status}`);
    default:
      return undefined;
  }
}

const connected = (status: ClientStatus['status']) => status === 'online' || status === 'resyncing';

/**
 * Watches a client and one of its streams for the ways a command can end without a result, and
 * shows the connection on the status line:
 * - not connected for `timeoutMs` in a row → `CONNECT_FAILED`, exit code 3;
 * - connected but without a result for `timeoutMs` (`once` mode) → `TIMEOUT`, exit code 1;
 * - a refusal of the handshake, the subscription or the upgrade → its code, exit code 1 (or 3
 *   when the address serves no hub).
 * In `watch` mode the timers stop at the first sync: a tail then reconnects for as long as it runs.
 */
export class HubGuard {
  /** Rejects with a HubFailure; never resolves. */
  readonly failed: Promise<never>;
  #reject!: (failure: HubFailure) => void;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #phase: 'connect' | 'answer' | undefined;
  #armed = true;
  #client: ClientStatus;
  #stream: StreamStatus | undefined;
  #statusText = '';
  readonly #unsubscribe: Array<() => void> = [];

  readonly #streamName: string;

  constructor(
    client: LockstepClient,
    stream: SyncedStream<AnyDomain>,
    private readonly hub: HubOptions,
    private readonly io: HubIo,
  ) {
    this.#streamName = stream.name;
    this.failed = new Promise<never>((_, reject) => (this.#reject = reject));
    // Nobody may be listening any more when a late failure comes: that is not an unhandled rejection.
    this.failed.catch(() => {});
    this.#client = client.status;
    const clientWatch = client.status$.subscribe((status) => this.#onClient(status));
    const streamWatch = stream.status$.subscribe((status) => this.#onStream(status));
    this.#unsubscribe.push(
      () => clientWatch.unsubscribe(),
      () => streamWatch.unsubscribe(),
    );
  }

  /** Stops the timers (a watch that is in sync); refusals still end it. */
  disarm(): void {
    this.#armed = false;
    this.#setTimer(undefined);
  }

  /** Prints a line of output, keeping the status line below it. */
  print(line: string): void {
    if (this.#statusText !== '') this.io.status?.('');
    this.io.out(line);
    if (this.#statusText !== '') this.io.status?.(this.#statusText);
  }

  /** Shows a note for people on the status line's stream (stderr), only on a terminal without --json. */
  note(line: string): void {
    if (!this.io.status || this.hub.json) return;
    if (this.#statusText !== '') this.io.status('');
    this.io.err(line);
    if (this.#statusText !== '') this.io.status(this.#statusText);
  }

  stop(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.#setTimer(undefined);
    this.#showStatus('');
  }

  #fail(failure: HubFailure): void {
    this.stop();
    this.#reject(failure);
  }

  #onClient(status: ClientStatus): void {
    this.#client = status;
    if (status.status === 'closed') return;
    const final = finalConnectFailure(status.lastError, this.hub.server);
    if (final) {
      this.#fail(final);
      return;
    }
    if (this.#armed) this.#setTimer(connected(status.status) ? 'answer' : 'connect');
    this.#render();
  }

  #onStream(status: StreamStatus): void {
    const previous = this.#stream?.lastError;
    this.#stream = status;
    if (status.lastError && status.lastError !== previous) {
      this.#fail(HubFailure.refusal(status.lastError));
      return;
    }
    this.#render();
  }

  #setTimer(phase: 'connect' | 'answer' | undefined): void {
    if (phase === this.#phase) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#phase = phase;
    if (phase === undefined) return;
    this.#timer = setTimeout(() => {
      const seconds = `${this.hub.timeoutMs / 1000} s`;
      // The client's own wording is "could not connect: <why>": keep the why.
      const why = this.#client.lastError?.message.replace(/^could not connect: /, '');
      this.#fail(
        phase === 'connect'
          ? new HubFailure(ExitCodes.unreachable, 'CONNECT_FAILED', `could not connect to ${this.hub.server} within ${seconds}${why ? `: ${why}` : ''}`)
          : new HubFailure(ExitCodes.failed, 'TIMEOUT', `no answer from ${this.hub.server} within ${seconds}`),
      );
    }, this.hub.timeoutMs);
  }

  #render(): void {
    const { status, attempt, lastError } = this.#client;
    let text = '';
    if (status === 'connecting') text = `connecting to ${this.hub.server}${attempt > 0 ? ` (attempt ${attempt + 1})` : ''}…`;
    else if (status === 'offline') text = `cannot reach ${this.hub.server}${lastError ? `: ${lastError.message}` : ''}; retrying…`;
    else if (this.#stream?.status === 'resyncing' || status === 'resyncing') text = `resyncing ${this.#streamName}…`;
    this.#showStatus(text);
  }

  #showStatus(text: string): void {
    if (!this.io.status || this.hub.json || text === this.#statusText) return;
    this.#statusText = text;
    this.io.status(text);
  }
}

/** Resolves once the stream is in sync with the hub (its status `online`). */
export function whenSynced(stream: SyncedStream<AnyDomain>): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const watch = stream.status$.subscribe((status) => {
      if (done || status.status !== 'online') return;
      done = true;
      resolve();
      queueMicrotask(() => watch.unsubscribe());
    });
    if (done) watch.unsubscribe();
  });
}

/**
 * A failure on stderr for people (`lockstep: COMMAND_REJECTED (task.notFound): no task t1`) and, with
 * `--json`, as `{"error": {code, message, reason?, data?}}` on stdout, so a script reads one document
 * either way.
 */
export function printFailure(failure: HubFailure, hub: Pick<HubOptions, 'json'>, io: Pick<HubIo, 'out' | 'err'>): number {
  const reason = (failure.data as { reason?: unknown } | undefined)?.reason;
  io.err(`lockstep: ${failure.code}${typeof reason === 'string' ? ` (${reason})` : ''}: ${failure.message}`);
  if (hub.json) {
    const error: Record<string, unknown> = { code: failure.code, message: failure.message };
    if (typeof reason === 'string') error['reason'] = reason;
    if (failure.data !== undefined) error['data'] = failure.data;
    io.out(JSON.stringify({ error }));
  }
  return failure.exitCode;
}

import { spawn, type ChildProcess } from 'node:child_process';
import { PROTOCOL_VERSION, systemClock, type Clock, type LockstepError, type TimerHandle, type Transport, type protocol } from '@lockstep/core';
import { Subject, type Observable } from 'rxjs';
import { SidecarChild, describeExit, type ChildExit, type ChildSettings } from './sidecarChild.js';
import { SidecarUnavailableError } from './SidecarUnavailableError.js';

export interface SidecarRestartOptions {
  /** Delay before the first restart after a crash. Default 250 ms. */
  initialMs?: number;
  /** Upper bound of the delay. Default 10 s. */
  maxMs?: number;
  /** Growth per consecutive restart. Default 2. */
  factor?: number;
  /** Consecutive restarts before giving up (`unavailable`, reason `gave-up`). Default 5. */
  maxRestarts?: number;
  /** A child that ran at least this long before dying starts the count again. Default 30 s. */
  resetAfterMs?: number;
}

export interface SidecarOptions {
  /** The executable, for example `process.execPath` or `lockstep`. */
  command: string;
  args?: readonly string[];
  /** The child's environment. Default: the host's. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** The child's stderr: passed through to the host's (default), dropped, or given to a callback as text. */
  stderr?: 'inherit' | 'ignore' | ((text: string) => void);
  restart?: SidecarRestartOptions;
  /** Health ping interval; 0 turns health checks off. Default 5 s. */
  pingIntervalMs?: number;
  /** A ping unanswered this long gets the child killed and restarted. Default 2 s. */
  pingTimeoutMs?: number;
  /** Time a new child has to answer its first ping (startup). Default 10 s. */
  startTimeoutMs?: number;
  /** Between SIGTERM and SIGKILL. Default 2 s. */
  killGraceMs?: number;
  /** The protocol version the host speaks: a hub answering `hello` with another is refused. Default 1. */
  protocol?: number;
  /**
   * Largest message read from the child. Default 64 MiB: the child is the host's own process, and a
   * snapshot of a large stream must fit (the 1 MiB default of stdio protects servers from peers).
   */
  maxMessageBytes?: number;
  clock?: Clock;
}

export const SIDECAR_DEFAULTS = {
  restart: { initialMs: 250, maxMs: 10_000, factor: 2, maxRestarts: 5, resetAfterMs: 30_000 },
  pingIntervalMs: 5_000,
  pingTimeoutMs: 2_000,
  startTimeoutMs: 10_000,
  killGraceMs: 2_000,
  maxMessageBytes: 64 * 1024 * 1024,
} as const;

/** What the current child said in answer to `hello`, and its pid. */
export type SidecarInfo = protocol.HelloResult & { pid: number };

/** The lifecycle of a sidecar, as `sidecar.events` reports it. */
export type SidecarEvent =
  | { type: 'spawned'; pid: number; restarts: number }
  | { type: 'negotiated'; info: SidecarInfo }
  | { type: 'unhealthy'; pid: number; reason: string }
  | { type: 'exited'; pid: number; code: number | null; signal: NodeJS.Signals | null; expected: boolean; uptimeMs: number }
  /** A child failed; the next one starts on the next `connect()` at least `delayMs` from now. */
  | { type: 'restarting'; delayMs: number; restart: number }
  | { type: 'protocolError'; pid: number; error: LockstepError }
  /** The host should fall back: `error.reason` says why (`gave-up` after too many restarts). */
  | { type: 'unavailable'; error: SidecarUnavailableError }
  | { type: 'closed' };

/**
 * Runs a Lockstep hub as a child process over stdio and keeps it running, for a host that syncs
 * with it through `createClient({ connect: sidecar.connect })`.
 *
 * - `connect()` answers a transport over the current child's stdin/stdout, spawning one if needed
 *   (waiting out the restart backoff). Each child serves one connection: when the client drops it
 *   (to reconnect), that child is retired and the next `connect()` gets a fresh one.
 * - The client says `hello` itself; the sidecar reads the answer as it passes. `negotiate()` and the
 *   `negotiated` event give the host the child's serverId, epoch, capabilities and domains.
 * - A child that dies is restarted with exponential backoff: the client reconnects, and `connect()`
 *   spawns the next child once the delay is over. One that does not answer a health ping in time is
 *   killed and restarted the same way. The client then resyncs (a memory hub comes back with a new
 *   epoch: the client resets its streams, never keeping stale state).
 * - A missing executable, an unsupported protocol, or too many restarts in a row make the sidecar
 *   unavailable: `connect()` and `negotiate()` reject with {@link SidecarUnavailableError}, the
 *   host's signal to fall back.
 * - `close()` ends the child (stdin closed and SIGTERM, SIGKILL after `killGraceMs`) and resolves
 *   once it is gone. A host that exits without closing still sends its children SIGTERM.
 */
export class Sidecar {
  readonly #options: SidecarOptions;
  readonly #settings: ChildSettings;
  readonly #restart: Required<SidecarRestartOptions>;
  readonly #events = new Subject<SidecarEvent>();
  readonly #clock: Clock;
  #child: SidecarChild | undefined;
  #spawning: Promise<void> | undefined;
  #restartTimer: TimerHandle | undefined;
  #restartDue: Promise<void> | undefined;
  #wakeRestart: (() => void) | undefined;
  /** Consecutive restarts after crashes. */
  #restarts = 0;
  #unavailable: SidecarUnavailableError | undefined;
  #closed = false;
  readonly #negotiation = new Set<{ resolve(info: SidecarInfo): void; reject(error: Error): void }>();
  readonly #onProcessExit = () => this.#child?.killNow('SIGTERM');

  constructor(options: SidecarOptions) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#restart = { ...SIDECAR_DEFAULTS.restart, ...options.restart };
    this.#settings = {
      clock: this.#clock,
      pingIntervalMs: options.pingIntervalMs ?? SIDECAR_DEFAULTS.pingIntervalMs,
      pingTimeoutMs: options.pingTimeoutMs ?? SIDECAR_DEFAULTS.pingTimeoutMs,
      startTimeoutMs: options.startTimeoutMs ?? SIDECAR_DEFAULTS.startTimeoutMs,
      killGraceMs: options.killGraceMs ?? SIDECAR_DEFAULTS.killGraceMs,
      maxMessageBytes: options.maxMessageBytes ?? SIDECAR_DEFAULTS.maxMessageBytes,
    };
  }

  /** Lifecycle events, from now on (hot). */
  get events(): Observable<SidecarEvent> {
    return this.#events.asObservable();
  }

  /** The current child's pid, if one is running. */
  get pid(): number | undefined {
    return this.#child?.alive ? this.#child.pid : undefined;
  }

  /** What the current child answered `hello`, once a client has greeted it. */
  get info(): SidecarInfo | undefined {
    const child = this.#child;
    return child?.alive && child.hello ? { ...child.hello, pid: child.pid } : undefined;
  }

  /** Why the sidecar cannot be used, once it cannot. */
  get unavailable(): SidecarUnavailableError | undefined {
    return this.#unavailable;
  }

  /**
   * A transport over a running child's stdio, for `createClient({ connect: sidecar.connect })`.
   * Rejects with {@link SidecarUnavailableError} when the sidecar cannot be used.
   */
  readonly connect = async (): Promise<Transport> => {
    for (;;) {
      this.#throwIfUnavailable();
      const child = this.#child;
      if (child?.alive) {
        if (!child.handedOut && child.open && child.killReason === undefined) return child.connection();
        if (child.shuttingDown || (!child.hostClosed && !child.open) || child.killReason !== undefined) {
          // It is on its way out by itself (shutting down, closed its end, being killed): let it
          // finish — it is terminated if it lingers — and restart after its exit, with backoff.
          await child.exited;
        } else {
          // The host dropped (or is abandoning) that child's one connection: retire it, start afresh.
          child.hostClose('replaced by a new connection');
          await child.terminate('replaced by a new connection');
        }
        continue;
      }
      if (this.#restartDue) {
        await this.#restartDue;
        continue;
      }
      await this.#spawnOnce();
    }
  };

  /**
   * Resolves with what the current child answered `hello`, spawning a child if none is running.
   * The sidecar sends no `hello` of its own — lockstep/1 allows one per connection, and the child's
   * only connection belongs to the client — so this waits for a client's `hello` to be answered.
   * Rejects with {@link SidecarUnavailableError} (missing executable, unsupported protocol, gave up,
   * closed): the host's signal to fall back.
   */
  readonly negotiate = (): Promise<SidecarInfo> => {
    const known = this.info;
    if (known) return Promise.resolve(known);
    return new Promise<SidecarInfo>((resolve, reject) => {
      if (this.#closed || this.#unavailable) {
        reject(this.#unavailable ?? closedError());
        return;
      }
      this.#negotiation.add({ resolve, reject });
      if (!this.#child?.alive && !this.#restartDue) void this.#spawnOnce();
    });
  };

  /** Stops the child (stdin closed and SIGTERM, then SIGKILL after the grace) and resolves once it is gone. */
  readonly close = async (): Promise<void> => {
    if (!this.#closed) {
      this.#closed = true;
      this.#cancelRestart();
      for (const waiter of this.#negotiation) waiter.reject(closedError());
      this.#negotiation.clear();
    }
    await this.#spawning;
    const child = this.#child;
    if (child?.alive) await child.terminate('sidecar closed');
    process.off('exit', this.#onProcessExit);
    if (!this.#events.closed) {
      this.#events.next({ type: 'closed' });
      this.#events.complete();
    }
  };

  #throwIfUnavailable(): void {
    if (this.#unavailable) throw this.#unavailable;
    if (this.#closed) throw closedError();
  }

  /** Spawns a child unless one is being spawned; resolves when that attempt is over. */
  #spawnOnce(): Promise<void> {
    this.#spawning ??= this.#spawn().finally(() => {
      this.#spawning = undefined;
    });
    return this.#spawning;
  }

  async #spawn(): Promise<void> {
    if (this.#closed || this.#unavailable) return;
    const { command, args = [], env, cwd, stderr = 'inherit' } = this.#options;
    let process_: ChildProcess;
    try {
      process_ = spawn(command, [...args], {
        stdio: ['pipe', 'pipe', typeof stderr === 'function' ? 'pipe' : stderr],
        windowsHide: true,
        ...(env === undefined ? {} : { env }),
        ...(cwd === undefined ? {} : { cwd }),
      });
    } catch (error) {
      this.#spawnFailed(command, error);
      return;
    }
    // Errors after the spawn (a failed kill) must never be unhandled.
    const spawnError = new Promise<Error | undefined>((resolve) => {
      process_.once('spawn', () => resolve(undefined));
      process_.once('error', (error) => resolve(error));
    });
    process_.on('error', () => {});
    process_.stderr?.on('error', () => {});
    const error = await spawnError;
    if (error !== undefined || process_.pid === undefined) {
      this.#spawnFailed(command, error);
      return;
    }
    if (typeof stderr === 'function') {
      process_.stderr!.setEncoding('utf8');
      process_.stderr!.on('data', (text: string) => stderr(text));
    }
    const child = new SidecarChild(process_, this.#settings, {
      negotiated: (from, hello) => this.#onNegotiated(from, hello),
      refused: (from, refusal) => {
        const message = `the sidecar does not speak protocol ${this.#protocol}: ${refusal.message}`;
        this.#becomeUnavailable(new SidecarUnavailableError('unsupported-protocol', message, { data: refusal.data, cause: refusal }));
        void from.terminate('unsupported protocol');
      },
      unhealthy: (from, reason) => this.#emit({ type: 'unhealthy', pid: from.pid, reason }),
      protocolError: (from, problem) => this.#emit({ type: 'protocolError', pid: from.pid, error: problem }),
      exited: (from, exit) => this.#onExited(from, exit),
    });
    this.#child = child;
    if (this.#closed) {
      await child.terminate('sidecar closed');
      return;
    }
    process.off('exit', this.#onProcessExit).on('exit', this.#onProcessExit);
    this.#emit({ type: 'spawned', pid: child.pid, restarts: this.#restarts });
  }

  get #protocol(): number {
    return this.#options.protocol ?? PROTOCOL_VERSION;
  }

  #spawnFailed(command: string, error: unknown): void {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR' || code === 'EISDIR') {
      const message = `cannot run the sidecar ${JSON.stringify(command)}: ${code}`;
      this.#becomeUnavailable(new SidecarUnavailableError('not-found', message, { cause: error }));
      return;
    }
    // Anything else (out of processes, for one) may pass: count it as a crash.
    this.#scheduleRestart(0);
  }

  #onNegotiated(child: SidecarChild, hello: protocol.HelloResult): void {
    if (hello.protocol !== this.#protocol) {
      const message = `the sidecar speaks protocol ${hello.protocol}, the host ${this.#protocol}`;
      this.#becomeUnavailable(new SidecarUnavailableError('unsupported-protocol', message, { data: { protocol: hello.protocol } }));
      void child.terminate('unsupported protocol');
      return;
    }
    const info: SidecarInfo = { ...hello, pid: child.pid };
    this.#emit({ type: 'negotiated', info });
    for (const waiter of this.#negotiation) waiter.resolve(info);
    this.#negotiation.clear();
  }

  #onExited(child: SidecarChild, exit: ChildExit): void {
    const uptimeMs = this.#clock.now() - child.startedAt;
    const expected = child.exitExpected;
    this.#emit({ type: 'exited', pid: child.pid, code: exit.code, signal: exit.signal, expected, uptimeMs });
    if (this.#child === child) process.off('exit', this.#onProcessExit);
    if (this.#closed || this.#unavailable || this.#child !== child || expected) return;
    // A child nobody connected to that ended cleanly (its hub closed an idle connection) is not a
    // failure: the next connect() starts another one.
    if (!child.handedOut && exit.code === 0) return;
    this.#scheduleRestart(uptimeMs, describeExit(exit));
  }

  /** Restarts after a crash, with backoff; gives up after too many restarts in a row. */
  #scheduleRestart(uptimeMs: number, why = 'spawn failed'): void {
    if (this.#closed || this.#unavailable || this.#restartDue) return;
    if (uptimeMs >= this.#restart.resetAfterMs) this.#restarts = 0;
    if (this.#restarts >= this.#restart.maxRestarts) {
      const message = `the sidecar kept failing (${why}); gave up after ${this.#restarts} restarts`;
      this.#becomeUnavailable(new SidecarUnavailableError('gave-up', message, { data: { restarts: this.#restarts } }));
      return;
    }
    const { initialMs, maxMs, factor } = this.#restart;
    const delayMs = Math.min(maxMs, initialMs * factor ** Math.min(this.#restarts, 32));
    this.#restarts++;
    this.#emit({ type: 'restarting', delayMs, restart: this.#restarts });
    // The next child is spawned by the next connect() (or negotiate()) once the delay is over, not
    // before: a child nobody has said hello to would only sit there (and a hub may close an
    // unauthenticated connection after a while).
    this.#restartDue = new Promise<void>((resolve) => {
      this.#wakeRestart = resolve;
      this.#restartTimer = this.#clock.setTimeout(() => {
        this.#restartTimer = undefined;
        this.#restartDue = undefined;
        this.#wakeRestart = undefined;
        resolve();
        if (this.#negotiation.size > 0) void this.#spawnOnce();
      }, delayMs);
    });
  }

  #cancelRestart(): void {
    if (this.#restartTimer !== undefined) this.#clock.clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    this.#restartDue = undefined;
    this.#wakeRestart?.();
    this.#wakeRestart = undefined;
  }

  #becomeUnavailable(error: SidecarUnavailableError): void {
    if (this.#unavailable || this.#closed) return;
    this.#unavailable = error;
    this.#cancelRestart();
    this.#emit({ type: 'unavailable', error });
    for (const waiter of this.#negotiation) waiter.reject(error);
    this.#negotiation.clear();
  }

  #emit(event: SidecarEvent): void {
    if (!this.#events.closed) this.#events.next(event);
  }
}

/** Creates a sidecar; the child is spawned on the first `connect()` or `negotiate()`. */
export function createSidecar(options: SidecarOptions): Sidecar {
  return new Sidecar(options);
}

function closedError(): SidecarUnavailableError {
  return new SidecarUnavailableError('closed', 'the sidecar was closed');
}

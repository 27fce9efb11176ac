import type { ChildProcess } from 'node:child_process';
import { ErrorCodes, LockstepError, protocol, type Clock, type Frame, type TimerHandle, type Transport, type TransportState } from '@lockstep/core';
import { Subject, type Observable } from 'rxjs';
import { createStdioTransport } from './stdioTransport.js';

/** Ids of the sidecar's own requests (health pings); the client's ids are numbers, so they never collide. */
export const SIDECAR_ID_PREFIX = 'lockstep-sidecar:';
/** What a frame holding a shutdown notice contains, as a JSON string (so a task titled "shutdown" is not parsed for nothing). */
const SHUTDOWN_METHOD = JSON.stringify(protocol.Notifications.shutdown);

export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ChildSettings {
  clock: Clock;
  /** 0: no health checks. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  startTimeoutMs: number;
  killGraceMs: number;
  maxMessageBytes: number;
}

export interface ChildObserver {
  /** The child answered the client's `hello`. */
  negotiated(child: SidecarChild, hello: protocol.HelloResult): void;
  /** The child refused the client's `hello` with UNSUPPORTED_PROTOCOL. */
  refused(child: SidecarChild, error: LockstepError): void;
  /** The child did not answer a health ping in time; it is being killed. */
  unhealthy(child: SidecarChild, reason: string): void;
  /** A frame from the child could not be read (framing error, oversized message). */
  protocolError(child: SidecarChild, error: LockstepError): void;
  exited(child: SidecarChild, exit: ChildExit): void;
}

/**
 * One spawned child: its stdio transport, the connection handed to the client, the health check,
 * the observation of the client's `hello`, and termination.
 */
export class SidecarChild {
  readonly pid: number;
  readonly startedAt: number;
  readonly raw: Transport;
  readonly exited: Promise<ChildExit>;
  /** What the child answered the client's hello, once it has. */
  hello: protocol.HelloResult | undefined;
  /** The connection has been given to a client (each child serves one connection). */
  handedOut = false;
  /** The host ended the connection (a client reconnecting or closing): the exit that follows is expected. */
  hostClosed = false;
  /** Why the sidecar is killing this child, if it is. */
  killReason: string | undefined;
  /** The sidecar killed it as unresponsive: its exit is a failure like a crash. */
  unhealthy = false;
  /** The hub announced it is shutting down (`shutdown` notification) of its own accord. */
  shuttingDown = false;
  exit: ChildExit | undefined;

  readonly #process: ChildProcess;
  readonly #settings: ChildSettings;
  readonly #observer: ChildObserver;
  readonly #toClient = new Subject<Frame>();
  #helloRequestId: protocol.RequestId | undefined;
  #pingCounter = 0;
  #pendingPing: string | undefined;
  #pingTimer: TimerHandle | undefined;
  #killTimer: TimerHandle | undefined;
  #retireTimer: TimerHandle | undefined;
  /** Killed because it stayed alive after its connection ended on its side. */
  #retired = false;
  #open = true;

  constructor(child: ChildProcess, settings: ChildSettings, observer: ChildObserver) {
    this.#process = child;
    this.pid = child.pid!;
    this.startedAt = settings.clock.now();
    this.#settings = settings;
    this.#observer = observer;
    this.raw = createStdioTransport({
      input: child.stdout!,
      output: child.stdin!,
      maxMessageBytes: settings.maxMessageBytes,
      info: { side: 'client', pid: this.pid },
      onFramingError: (error) => observer.protocolError(this, error),
    });
    this.raw.frames.subscribe({
      next: (frame) => this.#fromChild(frame),
      complete: () => this.#toClient.complete(),
    });
    this.raw.state.subscribe((state) => {
      if (state.status === 'closed') this.#onTransportClosed();
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const exit: ChildExit = { code, signal };
        this.exit = exit;
        this.#clearTimers();
        // Frames the child wrote before dying may still be unread: the transport closes when its
        // stdout ends (then 'close' fires), or after the grace period if a grandchild holds the pipe.
        this.#retireTimer = settings.clock.setTimeout(() => this.raw.close(describeExit(exit)), settings.killGraceMs);
        observer.exited(this, exit);
        resolve(exit);
      });
    });
    child.once('close', () => {
      if (!this.exit) return;
      this.#clearTimers();
      this.raw.close(describeExit(this.exit));
    });
    if (settings.pingIntervalMs > 0) this.#schedulePing(0, settings.startTimeoutMs);
  }

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Its stdio connection is still open. */
  get open(): boolean {
    return this.#open;
  }

  /**
   * Whether the exit was asked for: the host ended the connection, or the sidecar stopped the child
   * (replaced, closed, refused). A crash, an outside kill, an unresponsive child, a child that
   * closed its own stdout or shut its hub down by itself are failures, and are restarted with backoff.
   */
  get exitExpected(): boolean {
    // A client that closes its connection because the hub said it was shutting down did not ask for
    // it, whatever happened after.
    if (this.unhealthy || this.#retired || this.shuttingDown) return false;
    return this.hostClosed || this.killReason !== undefined;
  }

  /** The transport given to the client: the child's frames minus the sidecar's own traffic. */
  connection(): Transport {
    this.handedOut = true;
    return new ChildConnection(this, this.#toClient.asObservable());
  }

  /** Called by the connection for every frame the client sends. */
  fromClient(frame: Frame): boolean {
    if (this.#helloRequestId === undefined && this.hello === undefined && typeof frame === 'string') {
      const message = parseMessage(frame);
      if (message?.method === protocol.Methods.hello && message.id !== undefined && message.id !== null) this.#helloRequestId = message.id;
    }
    return this.raw.send(frame);
  }

  /** The host side ends the connection; the child sees stdin end and should exit by itself. */
  hostClose(reason: string): void {
    if (!this.alive) return;
    this.hostClosed = true;
    this.raw.close(reason);
  }

  /** SIGTERM now, SIGKILL after the grace period. Resolves once the process is gone. */
  terminate(reason: string): Promise<ChildExit> {
    if (this.alive && this.killReason === undefined) {
      this.killReason = reason;
      this.raw.close(reason);
      this.#signal('SIGTERM');
      this.#killTimer = this.#settings.clock.setTimeout(() => this.#signal('SIGKILL'), this.#settings.killGraceMs);
    }
    return this.exited;
  }

  /** Kills at once with `signal` (for the process 'exit' hook, which cannot wait). */
  killNow(signal: NodeJS.Signals): void {
    if (this.alive) this.#signal(signal);
  }

  #signal(signal: NodeJS.Signals): void {
    try {
      this.#process.kill(signal);
    } catch {
      // Already gone.
    }
  }

  #fromChild(frame: Frame): void {
    // Only frames that may hold a ping answer, a shutdown notice or the hello answer are parsed: the
    // others (events, snapshots, acks) pass untouched. A frame may be a batch (an array of messages).
    const watchingHello = this.#helloRequestId !== undefined && this.hello === undefined;
    if (typeof frame === 'string' && (watchingHello || frame.includes(SIDECAR_ID_PREFIX) || frame.includes(SHUTDOWN_METHOD))) {
      const decoded = parseJson(frame);
      const batch = Array.isArray(decoded);
      const messages: unknown[] = batch ? decoded : [decoded];
      const forClient = messages.filter((message) => !this.#observe(toMessage(message)));
      if (forClient.length === 0) return;
      // A batch that held one of our ping answers goes on without it.
      if (forClient.length < messages.length) frame = JSON.stringify(forClient.length === 1 ? forClient[0] : forClient);
    }
    this.#toClient.next(frame);
  }

  /** Looks at a message from the child; true when it is the sidecar's own (a ping answer) and goes no further. */
  #observe(message: LooseMessage | undefined): boolean {
    if (!message) return false;
    if (message.method === undefined && typeof message.id === 'string' && message.id.startsWith(SIDECAR_ID_PREFIX)) {
      this.#onPingAnswer(message.id);
      return true;
    }
    if (message.method === protocol.Notifications.shutdown) this.shuttingDown = true;
    if (this.#helloRequestId !== undefined && this.hello === undefined) this.#watchHello(message);
    return false;
  }

  #watchHello(message: LooseMessage): void {
    if (message.method !== undefined || message.id !== this.#helloRequestId) return;
    this.#helloRequestId = undefined;
    if (message.error) {
      const error = LockstepError.fromWire(message.error);
      if (message.error.code === ErrorCodes.UNSUPPORTED_PROTOCOL) this.#observer.refused(this, error);
      return;
    }
    const hello = protocol.helloResultSchema.safeParse(message.result);
    if (hello.success) {
      this.hello = hello.data;
      this.#observer.negotiated(this, hello.data);
    } else {
      this.#observer.protocolError(this, new LockstepError('INVALID_REQUEST', 'the sidecar answered hello with a malformed result'));
    }
  }

  #schedulePing(delayMs: number, timeoutMs: number): void {
    this.#pingTimer = this.#settings.clock.setTimeout(() => {
      if (!this.alive || this.killReason !== undefined) return;
      const id = `${SIDECAR_ID_PREFIX}ping:${++this.#pingCounter}`;
      this.#pendingPing = id;
      this.raw.send(JSON.stringify({ jsonrpc: '2.0', id, method: protocol.Methods.ping, params: {} }));
      this.#pingTimer = this.#settings.clock.setTimeout(() => {
        if (this.#pendingPing !== id || !this.alive) return;
        const reason = `no answer to a health ping within ${timeoutMs} ms`;
        this.unhealthy = true;
        this.#observer.unhealthy(this, reason);
        void this.terminate(reason);
      }, timeoutMs);
    }, delayMs);
  }

  #onPingAnswer(id: string): void {
    if (id !== this.#pendingPing) return;
    this.#pendingPing = undefined;
    if (this.#pingTimer !== undefined) this.#settings.clock.clearTimeout(this.#pingTimer);
    this.#schedulePing(this.#settings.pingIntervalMs, this.#settings.pingTimeoutMs);
  }

  /** The connection is over: a child that does not exit within the grace period is terminated. */
  #onTransportClosed(): void {
    this.#open = false;
    if (this.#pingTimer !== undefined) this.#settings.clock.clearTimeout(this.#pingTimer);
    this.#pingTimer = undefined;
    if (!this.alive || this.killReason !== undefined || this.#retireTimer !== undefined) return;
    this.#retireTimer = this.#settings.clock.setTimeout(() => {
      this.#retireTimer = undefined;
      this.#retired = !this.hostClosed || this.shuttingDown;
      void this.terminate('connection closed and the child did not exit');
    }, this.#settings.killGraceMs);
  }

  #clearTimers(): void {
    for (const timer of [this.#pingTimer, this.#killTimer, this.#retireTimer]) {
      if (timer !== undefined) this.#settings.clock.clearTimeout(timer);
    }
    this.#pingTimer = this.#killTimer = this.#retireTimer = undefined;
  }
}

/** The transport a client gets: the child's stdio, without the sidecar's health pings. */
class ChildConnection implements Transport {
  readonly state: Observable<TransportState>;
  readonly info: Readonly<Record<string, unknown>>;

  constructor(
    private readonly child: SidecarChild,
    readonly frames: Observable<Frame>,
  ) {
    this.state = child.raw.state;
    this.info = { ...child.raw.info, sidecar: true };
  }

  get bufferedAmount(): number {
    return this.child.raw.bufferedAmount ?? 0;
  }

  send(frame: Frame): boolean {
    return this.child.fromClient(frame);
  }

  close(reason = 'closed'): void {
    this.child.hostClose(reason);
  }
}

interface LooseMessage {
  id?: protocol.RequestId | null;
  method?: string;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

function parseJson(frame: string): unknown {
  try {
    return JSON.parse(frame) as unknown;
  } catch {
    return undefined;
  }
}

function toMessage(value: unknown): LooseMessage | undefined {
  const parsed = protocol.messageSchema.safeParse(value);
  return parsed.success ? (parsed.data as LooseMessage) : undefined;
}

function parseMessage(frame: string): LooseMessage | undefined {
  return toMessage(parseJson(frame));
}

export function describeExit(exit: ChildExit): string {
  return exit.signal !== null ? `sidecar killed by ${exit.signal}` : `sidecar exited with code ${exit.code}`;
}

import type { AnyServiceNotification, Clock, ParamsInput, TimerHandle } from '@lockstep/core';
import type { Peer } from '@lockstep/server';
import { describeMode, type DeliveryMode } from './deliveryPolicy.js';
import { terminalService, type ExitNotification, type OutputNotification } from './protocol.js';
import type { TerminalSource } from './terminal.js';

/** What an attachment needs of its viewer's connection. */
export type AttachmentPeer = Pick<Peer, 'sessionId' | 'clientId' | 'bufferedAmount' | 'closed' | 'notify'>;

export interface AttachmentSettings {
  chunkBytes: number;
  highWaterBytes: number;
  drainCheckMs: number;
  maxLagBytes: number | undefined;
  clock: Clock;
}

/** What an attachment looks like from outside (stats, tests). */
export interface AttachmentInfo {
  sessionId: string;
  clientId: string;
  terminalId: string;
  /** The next offset this viewer will be sent. */
  cursor: number;
  /** The terminal's released end: `end - cursor` is how far behind the viewer is. */
  end: number;
  mode: string;
  /** Bytes this viewer skipped because it fell behind (each skip was marked `truncated`). */
  skippedBytes: number;
  /** Unsent bytes of the viewer's connection right now. */
  bufferedAmount: number;
  exitSent: boolean;
}

/**
 * One viewer of one terminal over one connection. It holds no output of its own: it is a cursor into
 * the terminal's scrollback, and every send reads `[cursor, end)` from there. So a viewer that is
 * held back (paused, throttled, or its connection not draining) costs nothing but its cursor, catches
 * up with big coalesced chunks when it may send again, and when the scrollback has moved past its
 * cursor it skips ahead to the oldest retained byte with a `truncated` marker — never a silent gap,
 * never an unbounded buffer, never a pause of the program or of other viewers.
 */
export class Attachment {
  #cursor: number;
  #mode: DeliveryMode;
  #timer: TimerHandle | undefined;
  #timerAt = 0;
  /** When the last throttled burst went out. */
  #lastBurstAt = Number.NEGATIVE_INFINITY;
  #skipped = 0;
  /** A skip decided while the connection was held back, to be marked on the next chunk sent. */
  #pendingTruncation = false;
  #exitSent = false;
  /** Nothing is sent before `start()`: the attach answer goes out first. */
  #started = false;
  #closed = false;
  readonly #unlisten: Array<() => void>;

  constructor(
    readonly terminal: TerminalSource,
    readonly session: AttachmentPeer,
    from: number,
    mode: DeliveryMode,
    private readonly settings: AttachmentSettings,
    private readonly onGone: (attachment: Attachment) => void,
  ) {
    this.#cursor = from;
    this.#mode = mode;
    this.#unlisten = [
      terminal.onOutput(() => this.pump()),
      terminal.onExit(() => this.pump()),
      terminal.onResize(({ cols, rows }) => {
        if (this.#started) this.#notify(terminalService.resized, { terminalId: terminal.id, cols, rows });
      }),
      terminal.onDispose(() => {
        // The last chance to tell this viewer how its program ended: whatever held the rest back.
        this.#finish();
        this.close();
      }),
    ];
  }

  get cursor(): number {
    return this.#cursor;
  }

  get mode(): DeliveryMode {
    return this.#mode;
  }

  get closed(): boolean {
    return this.#closed;
  }

  info(): AttachmentInfo {
    return {
      sessionId: this.session.sessionId,
      clientId: this.session.clientId,
      terminalId: this.terminal.id,
      cursor: this.#cursor,
      end: this.terminal.end,
      mode: describeMode(this.#mode),
      skippedBytes: this.#skipped,
      bufferedAmount: this.session.bufferedAmount,
      exitSent: this.#exitSent,
    };
  }

  /** Starts sending (called once the attach answer is on its way). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.pump();
  }

  setMode(mode: DeliveryMode): void {
    if (this.#closed || sameMode(mode, this.#mode)) return;
    this.#mode = mode;
    this.#clearTimer();
    this.pump();
  }

  /**
   * Sends what this viewer may be sent now: everything from its cursor to the terminal's end, in
   * chunks of at most `chunkBytes`, while its connection stays under the high-water mark; then the
   * exit, once, when the program has exited and the viewer has all of its output.
   */
  pump(): void {
    this.#pump(false);
  }

  /** `final`: the terminal is going away, so the high-water mark no longer holds anything back. */
  #pump(final: boolean): void {
    if (this.#closed || !this.#started) return;
    const { terminal, settings } = this;
    const mode = this.#mode;
    // An exited terminal produces nothing more, so even a paused or throttled viewer gets the
    // (bounded) rest at once, and its exit: the terminal may be disposed right after it exits, and
    // a burst scheduled for later would never go out.
    if (mode === 'pause' && terminal.exit === undefined) return;
    const now = settings.clock.now();
    if (typeof mode === 'object' && this.#cursor < terminal.end && terminal.exit === undefined) {
      const due = this.#lastBurstAt + mode.throttleMs;
      if (now < due) {
        this.#schedule(due - now);
        return;
      }
    }
    let sent = false;
    for (;;) {
      const end = terminal.end;
      let truncated = false;
      const floor = Math.max(terminal.start, settings.maxLagBytes === undefined ? 0 : end - settings.maxLagBytes);
      if (this.#cursor < floor) {
        this.#skipped += floor - this.#cursor;
        this.#cursor = floor;
        truncated = true;
      }
      if (this.#cursor >= end) break;
      if (!final && this.session.bufferedAmount > settings.highWaterBytes) {
        // Held back: output coalesces in the scrollback; resumed by a drain check.
        if (truncated) this.#pendingTruncation = true;
        this.#schedule(settings.drainCheckMs);
        break;
      }
      const to = Math.min(end, this.#cursor + settings.chunkBytes);
      const params: OutputNotification = { terminalId: terminal.id, offset: this.#cursor, data: terminal.readBase64(this.#cursor, to) };
      if (truncated || this.#pendingTruncation) params.truncated = true;
      if (!this.#notify(terminalService.output, params)) return;
      this.#pendingTruncation = false;
      this.#cursor = to;
      sent = true;
    }
    if (sent) this.#lastBurstAt = now;
    const exit = terminal.exit;
    if (exit && !this.#exitSent && this.#cursor >= terminal.end) {
      this.#exitSent = true;
      const params: ExitNotification = { terminalId: terminal.id, exitCode: exit.exitCode };
      if (exit.signal !== undefined) params.signal = exit.signal;
      this.#notify(terminalService.exit, params);
    }
  }

  /**
   * Sends an exited terminal's rest and its exit now, past the high-water mark: the terminal is
   * being disposed, and what is not sent now never will be. Bounded by the scrollback (and
   * `maxLagBytes`); a viewer not yet started, or a terminal disposed while running, gets nothing.
   */
  #finish(): void {
    if (this.#closed || !this.#started || this.terminal.exit === undefined || this.#exitSent) return;
    this.#pump(true);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    for (const unlisten of this.#unlisten) unlisten();
    this.onGone(this);
  }

  /** False (and the attachment closes) once the connection is gone. */
  #notify<N extends AnyServiceNotification>(notification: N, params: ParamsInput<N>): boolean {
    if (this.#closed) return false;
    if (this.session.closed || !this.session.notify(notification, params)) {
      this.close();
      return false;
    }
    return true;
  }

  #schedule(ms: number): void {
    const at = this.settings.clock.now() + ms;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= at) return;
      this.#clearTimer();
    }
    this.#timerAt = at;
    this.#timer = this.settings.clock.setTimeout(() => {
      this.#timer = undefined;
      this.pump();
    }, ms);
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.settings.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function sameMode(a: DeliveryMode, b: DeliveryMode): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.throttleMs === b.throttleMs;
}

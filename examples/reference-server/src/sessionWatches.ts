import { LockstepError, systemClock, type Clock, type ParamsInput, type TasksState } from '@lockstep/core';
import { Attachment, DELIVERY_DEFAULTS, type AttachmentPeer, type Terminal, type TerminalManager } from '@lockstep/pty';
import { terminalResource, terminalService, type OutputNotification } from '@lockstep/pty/protocol';
import type { Hub, Peer } from '@lockstep/server';
import type { DaemonStatus } from './daemonStatus.js';
import { daemonService, type SessionStatus } from './daemonService.js';
import { noProgram, sessionNotFound } from './sessionControl.js';
import { ToolCallLines } from './toolCallLines.js';

export interface SessionWatchesOptions {
  hub: Hub;
  daemon: DaemonStatus;
  terminals: TerminalManager;
  /** The pacing's drain checks. Default: the system clock (the terminals' own). */
  clock?: Clock;
  onError(error: unknown, context: string): void;
}

type SessionEnded = ParamsInput<typeof daemonService.sessionEnded>;

/** One connection watching one session. */
interface Watch {
  readonly peer: Peer;
  readonly sessionId: string;
  /** Where its output starts (the program may not have a terminal yet). */
  readonly since: number;
  /** Reads the program's terminal, paced by the connection; undefined until the program has one. */
  attachment: Attachment | undefined;
  /** Output is sent only once the watch's answer is on its way. */
  started: boolean;
  /** The terminal's exit was relayed: every byte of its output has been sent. */
  drained: boolean;
  /** The session's end as recorded, waiting for its output to be drained. */
  ended: SessionEnded | undefined;
  /** Bytes of a UTF-8 character cut by a chunk's end, sent with the next chunk. */
  held: Buffer;
  readonly lines: ToolCallLines;
  closed: boolean;
}

const EMPTY = Buffer.alloc(0);

/**
 * The watches of `daemon.watch`: per connection and session, the program's output as `daemon.output`
 * text chunks, the tool calls in it (`daemon.toolCallStart`, `daemon.toolCallResult`), and
 * `daemon.sessionEnded` once the session's end is recorded — after its last output.
 *
 * Output is read with `@lockstep/pty`'s `Attachment`, the terminal service's own reader: a cursor
 * into the terminal's scrollback, paced by the connection's unsent bytes (nothing is sent past
 * 512 KiB; a watcher that falls out of the scrollback skips ahead with `truncated`), so a watcher
 * costs the server its cursor, never a buffer, and never slows the program. Its `terminal.output`
 * chunks are turned into text here, cut only between characters so `end` is always a place to resume.
 */
export class SessionWatches {
  readonly #options: SessionWatchesOptions;
  readonly #stream: string;
  /** Connection (`peer.sessionId`) → session id → watch. */
  readonly #byPeer = new Map<string, Map<string, Watch>>();
  readonly #stopSpawns: () => void;
  #stopChanges: (() => void) | undefined;
  #checking = false;
  #checkAgain = false;
  #closed = false;

  constructor(options: SessionWatchesOptions) {
    this.#options = options;
    this.#stream = `tasks/${options.daemon.project}`;
    this.#stopSpawns = options.terminals.onSpawn((terminal) => this.#spawned(terminal));
  }

  /**
   * Starts (or restarts) `peer`'s watch of `sessionId` from byte `since`. Refuses: FORBIDDEN unless
   * the peer may read `terminal/<id>` and `tasks/<project>`; `session.notFound`; `session.noProgram`
   * on a server without terminals; INVALID_PARAMS `sinceAhead` past the output there is.
   */
  async watch(peer: Peer, sessionId: string, since = 0): Promise<{ sessionId: string; offset: number; session: SessionStatus }> {
    const session = await this.#authorize(peer, sessionId);
    if (!this.#options.daemon.sessions) throw noProgram(this.#stream);
    const terminal = this.#options.terminals.get(sessionId);
    const written = terminal?.written ?? 0;
    if (since > written) {
      throw new LockstepError('INVALID_PARAMS', `offset ${since} is beyond the output of session ${sessionId} (${written} bytes)`, {
        reason: 'sinceAhead',
        end: written,
      });
    }
    if (peer.closed) throw new LockstepError('UNAVAILABLE', 'the connection closed', { reason: 'connectionClosed' });
    this.unwatch(peer, sessionId);
    const watch: Watch = {
      peer,
      sessionId,
      since,
      attachment: undefined,
      started: false,
      drained: false,
      ended: undefined,
      held: EMPTY,
      lines: new ToolCallLines(),
      closed: false,
    };
    let watches = this.#byPeer.get(peer.sessionId);
    if (!watches) this.#byPeer.set(peer.sessionId, (watches = new Map<string, Watch>()));
    watches.set(sessionId, watch);
    this.#stopChanges ??= this.#options.daemon.onChange(() => this.#scheduleCheck());
    // The answer goes out in this turn; output follows from the next one, so it never overtakes it.
    setImmediate(() => this.#start(watch));
    return { sessionId, offset: terminal ? Math.max(since, terminal.start) : since, session };
  }

  /** Ends `peer`'s watch of `sessionId`; false when there was none. */
  unwatch(peer: Peer, sessionId: string): boolean {
    const watch = this.#byPeer.get(peer.sessionId)?.get(sessionId);
    if (!watch) return false;
    this.#close(watch);
    return true;
  }

  /** Throws unless `peer` may watch the session once it exists (checked before anything is created for it). */
  async authorizeWatch(peer: Peer, sessionId: string): Promise<void> {
    await peer.authorize(terminalResource(sessionId), 'read');
    if (!this.#options.daemon.sessions) throw noProgram(this.#stream);
  }

  /** A connection closed: its watches go. */
  peerClosed(peer: Peer): void {
    for (const watch of [...(this.#byPeer.get(peer.sessionId)?.values() ?? [])]) this.#close(watch);
  }

  /** The connection's grants were re-checked: a watch it may no longer have ends with `daemon.unwatched`. */
  async reauthorize(peer: Peer): Promise<void> {
    const watches = [...(this.#byPeer.get(peer.sessionId)?.values() ?? [])];
    await Promise.all(
      watches.map(async (watch) => {
        try {
          await this.#authorize(peer, watch.sessionId);
        } catch (error) {
          if (watch.closed) return;
          this.#close(watch);
          peer.notify(daemonService.unwatched, { sessionId: watch.sessionId, error: LockstepError.from(error).toJSON() });
        }
      }),
    );
  }

  close(): void {
    this.#closed = true;
    this.#stopSpawns();
    this.#stopChanges?.();
    for (const watches of [...this.#byPeer.values()]) for (const watch of [...watches.values()]) this.#close(watch);
  }

  /** The session as `peer` may see it: `terminal/<id>` `read` first (so ids cannot be probed), then the session's stream. */
  async #authorize(peer: Peer, sessionId: string): Promise<SessionStatus> {
    await peer.authorize(terminalResource(sessionId), 'read');
    const session = await this.#options.daemon.session(peer.identity, sessionId);
    if (!session) throw sessionNotFound(sessionId);
    return session;
  }

  #start(watch: Watch): void {
    if (watch.closed) return;
    watch.started = true;
    const terminal = this.#options.terminals.get(watch.sessionId);
    if (terminal) this.#attach(watch, terminal);
    // It may have ended already (before this server run, or while nobody watched).
    this.#scheduleCheck();
  }

  /** A program got its terminal: the watches waiting for it start reading. */
  #spawned(terminal: Terminal): void {
    for (const watches of this.#byPeer.values()) {
      const watch = watches.get(terminal.id);
      if (watch?.started && !watch.closed && watch.attachment === undefined) this.#attach(watch, terminal);
    }
  }

  #attach(watch: Watch, terminal: Terminal): void {
    const { peer } = watch;
    const relay: AttachmentPeer = {
      sessionId: peer.sessionId,
      clientId: peer.clientId,
      get bufferedAmount() {
        return peer.bufferedAmount;
      },
      get closed() {
        return peer.closed || watch.closed;
      },
      notify: (notification, params) => this.#relay(watch, notification.method, params),
    };
    const settings = {
      chunkBytes: 64 * 1024,
      highWaterBytes: DELIVERY_DEFAULTS.highWaterBytes,
      drainCheckMs: DELIVERY_DEFAULTS.drainCheckMs,
      maxLagBytes: undefined,
      clock: this.#options.clock ?? systemClock,
    };
    watch.attachment = new Attachment(terminal, relay, watch.since, 'live', settings, () => {
      // The terminal went (its session was deleted, the server is closing) or the connection did.
      if (watch.attachment?.closed) watch.attachment = undefined;
    });
    watch.attachment.start();
  }

  /** What the attachment sends, as the daemon's notifications. False once the connection is gone. */
  #relay(watch: Watch, method: string, params: unknown): boolean {
    if (watch.closed || watch.peer.closed) return false;
    if (method === terminalService.output.method) {
      const output = params as OutputNotification;
      let offset = output.offset;
      let bytes = Buffer.from(output.data, 'base64');
      if (output.truncated) {
        // A gap: what was held belongs before it; a character cut by the gap cannot be shown.
        watch.lines.reset();
        const skip = leadingContinuationBytes(bytes);
        bytes = bytes.subarray(skip);
        offset += skip;
      } else if (watch.held.length > 0) {
        offset -= watch.held.length;
        bytes = Buffer.concat([watch.held, bytes]);
      }
      const cut = completeUtf8Length(bytes);
      watch.held = Buffer.from(bytes.subarray(cut));
      return cut === 0 || this.#sendText(watch, offset, bytes.subarray(0, cut), output.truncated === true);
    }
    if (method === terminalService.exit.method) {
      // The last bytes, whatever they are: nothing more will complete them.
      if (watch.held.length > 0) {
        // The attachment's cursor is past every byte sent: the held ones end there.
        const offset = watch.attachment?.cursor ?? 0;
        const held = watch.held;
        watch.held = EMPTY;
        if (!this.#sendText(watch, offset - held.length, held, false)) return false;
      }
      watch.drained = true;
      this.#finish(watch);
    }
    // `terminal.resized` is no part of the daemon's protocol.
    return true;
  }

  #sendText(watch: Watch, offset: number, bytes: Buffer, truncated: boolean): boolean {
    const { peer, sessionId } = watch;
    const chunk = bytes.toString('utf8');
    const sent = peer.notify(daemonService.output, { sessionId, offset, end: offset + bytes.length, chunk, ...(truncated && { truncated: true as const }) });
    if (!sent) return false;
    for (const call of watch.lines.push(chunk)) {
      if (call.kind === 'start') peer.notify(daemonService.toolCallStart, { sessionId, toolName: call.toolName, input: call.input });
      else peer.notify(daemonService.toolCallResult, { sessionId, toolName: call.toolName, result: call.result });
    }
    return true;
  }

  /** Sends `sessionEnded` once the end is recorded and the output drained (or there is no output to drain). */
  #finish(watch: Watch): void {
    if (watch.closed || !watch.started || watch.ended === undefined) return;
    if (watch.attachment && !watch.drained && watch.ended.status !== 'deleted') return;
    const ended = watch.ended;
    this.#close(watch);
    watch.peer.notify(daemonService.sessionEnded, ended);
  }

  /** Reads the sessions once for every watch after a change (changes that come meanwhile read again). */
  #scheduleCheck(): void {
    if (this.#checking) {
      this.#checkAgain = true;
      return;
    }
    this.#checking = true;
    void (async () => {
      try {
        do {
          this.#checkAgain = false;
          if (this.#byPeer.size === 0) break;
          const { state } = await this.#options.hub.read(this.#stream);
          const { sessions } = state as TasksState;
          for (const watches of [...this.#byPeer.values()]) {
            for (const watch of [...watches.values()]) {
              if (!watch.started || watch.closed) continue;
              const session = Object.hasOwn(sessions, watch.sessionId) ? sessions[watch.sessionId]! : undefined;
              if (!session) watch.ended = { sessionId: watch.sessionId, status: 'deleted' };
              else if (session.status === 'exited' || session.status === 'failed') {
                watch.ended = {
                  sessionId: watch.sessionId,
                  status: session.status,
                  ...(session.exitCode !== undefined && { exitCode: session.exitCode }),
                  ...(session.signal !== undefined && { signal: session.signal }),
                  ...(session.reason !== undefined && { reason: session.reason }),
                };
              }
              this.#finish(watch);
            }
          }
        } while (this.#checkAgain);
      } catch (error) {
        // A hub shutting down answers nothing more: its watches are closed anyway.
        if (!this.#closed) this.#options.onError(error, `checking the watched sessions of ${this.#stream}`);
      } finally {
        this.#checking = false;
      }
    })();
  }

  #close(watch: Watch): void {
    if (watch.closed) return;
    watch.closed = true;
    watch.attachment?.close();
    watch.attachment = undefined;
    const watches = this.#byPeer.get(watch.peer.sessionId);
    if (watches?.get(watch.sessionId) === watch) {
      watches.delete(watch.sessionId);
      if (watches.size === 0) this.#byPeer.delete(watch.peer.sessionId);
    }
  }
}

/** The length of `bytes` up to the last complete UTF-8 character (a cut sequence at the end is left out). */
export function completeUtf8Length(bytes: Uint8Array): number {
  const length = bytes.length;
  // Look back at most 3 bytes for the lead byte of the last sequence.
  for (let back = 1; back <= Math.min(3, length); back++) {
    const byte = bytes[length - back]!;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: keep looking
    const needed = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return needed > back ? length - back : length;
  }
  return length; // only continuation bytes (invalid anyway): sent as they are
}

/** Continuation bytes at the start of `bytes` (a character cut at its beginning), at most 3. */
function leadingContinuationBytes(bytes: Uint8Array): number {
  let count = 0;
  while (count < 3 && count < bytes.length && (bytes[count]! & 0xc0) === 0x80) count++;
  return count;
}

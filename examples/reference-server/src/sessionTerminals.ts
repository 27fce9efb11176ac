import { randomUUID } from 'node:crypto';
import { SPAWN_CANCELLED, TERMINAL_ID_PATTERN, WAITING_FOR_TERMINAL_SLOT, type Terminal, type TerminalManager } from '@lockstep/pty';
import { LockstepError, type Event, type TasksState } from '@lockstep/core';
import type { Hub } from '@lockstep/server';
import { StreamFeed } from './streamFeed.js';

/** The program each session's terminal runs: argv, never a command line. */
export interface ShellCommand {
  file: string;
  args: readonly string[];
}

export interface SessionTerminalsOptions {
  hub: Hub;
  /** The terminal extension's manager (its spawn policy allows `shell.file` only). */
  terminals: TerminalManager;
  /** Whose `tasks/<project>` sessions get terminals. */
  project: string;
  shell: ShellCommand;
  onError(error: unknown, context: string): void;
}

/** What became of a session's terminal (see {@link SessionTerminals.status}). */
export type SessionTerminalStatus =
  /** Spawning, or recording its start. */
  | { state: 'starting' }
  /** Every terminal slot is taken (`maxTerminals`): it starts when one frees, in order of arrival. */
  | { state: 'waiting'; reason: typeof WAITING_FOR_TERMINAL_SLOT; position: number; since: number }
  /** It started (and may have exited since: see `terminal.running`). */
  | { state: 'started'; terminal: Terminal }
  /** It could not start; the session was marked `failed`. */
  | { state: 'failed'; reason: string };

type Entry = { state: 'pending' } | { state: 'started'; terminal: Terminal } | { state: 'failed'; reason: string };

/**
 * One shell per session of `tasks/<project>`: the terminal's id is the session id. A session created
 * (by any client, over any transport) gets a terminal, a deleted one loses it, and the sessions
 * already there at start get theirs. The terminal extension records each terminal's lifecycle in the
 * same stream (`session.update {status: 'running'}`, then `'exited'` with the exit code), so every
 * client sees a session's shell start and end.
 *
 * Each session gets one terminal per server run: a shell that exits leaves its session `exited`
 * until the session is deleted (or the server restarts).
 *
 * When every terminal slot is taken (the manager's `maxTerminals`), a new session waits in line and
 * gets its terminal as soon as a slot frees — a session is deleted, or a shell exits (an exited
 * terminal gives its slot up to whoever waits). Meanwhile the session stays `starting` (the tasks
 * domain has no field for a reason), and the reason is told by {@link status}, by the manager's
 * `waiting()`, and to a viewer by `terminal.attach` (`UNKNOWN_STREAM`, reason `waitingForTerminalSlot`).
 * A deleted session leaves the line. A terminal that cannot start for any other reason marks its
 * session `failed` and the reason goes to `onError`: no session stays `starting` for ever.
 *
 * The terminals are the server's own work, spawned in reaction to events, which do not say who created
 * the session: they count against `maxTerminals` only, not against `maxTerminalsPerIdentity`.
 */
export class SessionTerminals {
  readonly #options: SessionTerminalsOptions;
  readonly #stream: string;
  /** Session id → what became of its terminal (a failure is not retried). */
  readonly #sessions = new Map<string, Entry>();
  #feed: StreamFeed | undefined;
  #dirty = false;
  #draining = false;
  #idle: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(options: SessionTerminalsOptions) {
    this.#options = options;
    this.#stream = `tasks/${options.project}`;
  }

  /** Follows the sessions of `tasks/<project>`; resolves once the sessions present have their terminals. */
  static async start(options: SessionTerminalsOptions): Promise<SessionTerminals> {
    const self = new SessionTerminals(options);
    // Live events only (from the current version): ghosts are looked for in what happens from now on.
    const { version } = await options.hub.read(self.#stream);
    self.#feed = await StreamFeed.start(options.hub, self.#stream, version, {
      snapshot: () => self.#schedule(),
      event: (event) => {
        self.#buryGhost(event);
        self.#schedule();
      },
      end: (reason) => {
        if (!self.#closed) options.onError(new Error(reason), `following ${self.#stream} for terminals`);
      },
    });
    self.#schedule();
    await self.settled();
    return self;
  }

  /** The terminal of a session, if it has one. */
  get(sessionId: string): Terminal | undefined {
    const entry = this.#sessions.get(sessionId);
    return entry?.state === 'started' ? entry.terminal : undefined;
  }

  /** Where a session's terminal stands, and why it has none when it has none (undefined: not seen yet). */
  status(sessionId: string): SessionTerminalStatus | undefined {
    const entry = this.#sessions.get(sessionId);
    if (entry === undefined) return undefined;
    if (entry.state !== 'pending') return entry;
    const waiting = this.#options.terminals.waitingFor(sessionId);
    return waiting ? { state: 'waiting', reason: WAITING_FOR_TERMINAL_SLOT, position: waiting.position, since: waiting.since } : { state: 'starting' };
  }

  /** Resolves once every change seen so far has been acted on. */
  async settled(): Promise<void> {
    while (this.#draining) await this.#idle;
  }

  /** Stops following the sessions (the hub's close then ends the terminals themselves). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#feed?.close();
    await this.settled();
  }

  #schedule(): void {
    this.#dirty = true;
    if (this.#draining || this.#closed) return;
    this.#draining = true;
    this.#idle = this.#drain();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty && !this.#closed) {
        this.#dirty = false;
        await this.#reconcile();
      }
    } catch (error) {
      this.#options.onError(error, `matching terminals to the sessions of ${this.#stream}`);
    } finally {
      this.#draining = false;
    }
  }

  async #reconcile(): Promise<void> {
    const { state } = await this.#options.hub.read(this.#stream);
    const sessions = (state as TasksState).sessions;
    for (const id of [...this.#sessions.keys()]) {
      if (this.#closed) return;
      if (!Object.hasOwn(sessions, id)) await this.#kill(id);
    }
    for (const id of Object.keys(sessions)) {
      if (this.#closed) return;
      if (!this.#sessions.has(id)) await this.#spawn(id);
    }
  }

  async #spawn(sessionId: string): Promise<void> {
    if (!TERMINAL_ID_PATTERN.test(sessionId)) {
      // Session ids allow a leading `.` `:` `-` and up to 128 characters; terminal ids do not.
      const entry: Entry = { state: 'pending' };
      this.#sessions.set(sessionId, entry);
      this.#failed(sessionId, entry, new Error(`session id ${JSON.stringify(sessionId)} cannot name a terminal`));
      return;
    }
    const { file, args } = this.#options.shell;
    const entry: Entry = { state: 'pending' };
    this.#sessions.set(sessionId, entry);
    const starting = this.#options.terminals.spawn({ id: sessionId, file, args: [...args], project: this.#options.project }, { wait: true });
    if (this.#options.terminals.waitingFor(sessionId)) {
      // In line for a slot: not awaited, so the other sessions (and deletions) are served meanwhile.
      starting.then(
        (terminal) => this.#started(sessionId, entry, terminal),
        (error: unknown) => this.#failed(sessionId, entry, error),
      );
      return;
    }
    try {
      this.#started(sessionId, entry, await starting);
    } catch (error) {
      this.#failed(sessionId, entry, error);
    }
  }

  #started(sessionId: string, entry: Entry, terminal: Terminal): void {
    if (this.#sessions.get(sessionId) === entry) {
      this.#sessions.set(sessionId, { state: 'started', terminal });
    } else if (this.#options.terminals.get(sessionId) === terminal) {
      // The session went while its terminal was starting: the terminal goes too.
      void this.#options.terminals.remove(sessionId).catch((error: unknown) => this.#options.onError(error, `removing the terminal of deleted session ${sessionId}`));
    }
  }

  /** The terminal could not start: the session says `failed` (not `starting` for ever), `onError` says why. */
  #failed(sessionId: string, entry: Entry, error: unknown): void {
    // Removed from the line because its session was deleted, or the server is closing: nothing to say.
    if (this.#closed || this.#sessions.get(sessionId) !== entry || isCancelled(error)) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.#sessions.set(sessionId, { state: 'failed', reason });
    this.#options.onError(error, `starting the terminal of session ${sessionId}`);
    this.#options.hub
      .execute({ id: `pty-failed:${randomUUID()}`, stream: this.#stream, type: 'session.update', payload: { id: sessionId, status: 'failed' } })
      .catch((recordError: unknown) => {
        if (!isGoneSession(recordError) && !this.#closed) this.#options.onError(recordError, `marking session ${sessionId} failed`);
      });
  }

  async #kill(sessionId: string): Promise<void> {
    this.#sessions.delete(sessionId);
    // Also takes it out of the line if it is still waiting for a slot.
    await this.#options.terminals.remove(sessionId);
  }

  /**
   * A terminal records its start as `session.update`, or as `session.create` when the session is not
   * there — which, since terminals are only spawned for existing sessions, means it was deleted while
   * its terminal was starting. That session is deleted again, so a deleted session never comes back.
   */
  #buryGhost(event: Event): void {
    if (event.type !== 'session.created' || !event.commandId?.startsWith('pty:')) return;
    const { id } = event.data as { id: string };
    this.#options.hub
      .execute({ id: `ghost:${event.commandId}`, stream: this.#stream, type: 'session.delete', payload: { id } })
      .catch((error: unknown) => this.#options.onError(error, `deleting session ${id}, re-created by its terminal after it was deleted`));
  }
}

function isCancelled(error: unknown): boolean {
  return error instanceof LockstepError && (error.data as { reason?: unknown } | undefined)?.reason === SPAWN_CANCELLED;
}

/** The session was deleted before it could be marked (or the status is already `failed`). */
function isGoneSession(error: unknown): boolean {
  const reason = error instanceof LockstepError ? (error.data as { reason?: unknown } | undefined)?.reason : undefined;
  return reason === 'session.notFound' || reason === 'session.noChanges';
}

import { randomUUID } from 'node:crypto';
import {
  DEFAULT_KILL_GRACE_MS,
  SPAWN_CANCELLED,
  TERMINAL_ID_PATTERN,
  WAITING_FOR_TERMINAL_SLOT,
  statusCode,
  type ExitInfo,
  type Terminal,
  type TerminalManager,
} from '@lockstep/pty';
import { LockstepError, TASK_LIMITS, systemClock, type Clock, type Session, type SessionChanges, type TasksState } from '@lockstep/core';
import type { Hub } from '@lockstep/server';
import type { StopSignal } from './contract.js';
import type { Profiles } from './profiles.js';
import { StreamFeed } from './streamFeed.js';

/** The program each session's terminal runs: argv, never a command line. */
export interface ShellCommand {
  file: string;
  args: readonly string[];
}

export interface SessionTerminalsOptions {
  hub: Hub;
  /**
   * The terminal extension's manager, created with `recordSessions: false` (this class records the
   * sessions' lifecycle) and a spawn policy that allows the profiles' executables.
   */
  terminals: TerminalManager;
  /** Whose `tasks/<project>` sessions get terminals. */
  project: string;
  /** What a session may run: its `profile` (or the default one) and its `prompt`. */
  profiles: Profiles;
  /** When runs started and ended (the daemon status). Default: the system clock. */
  clock?: Clock;
  onError(error: unknown, context: string): void;
}

/** The signals a stop may send first (in contract.ts, shared with the dashboard and the daemon service). */
export { STOP_SIGNALS, type StopSignal } from './contract.js';

/** The `reason` recorded with the exit of a session stopped on request. */
export const STOPPED = 'stopped';

/** What became of a session's terminal (see {@link SessionTerminals.status}). */
export type SessionTerminalStatus =
  /** Spawning, or recording its start. */
  | { state: 'starting'; profile: string }
  /** Every terminal slot is taken (`maxTerminals`): it starts when one frees, in order of arrival. */
  | { state: 'waiting'; profile: string; reason: typeof WAITING_FOR_TERMINAL_SLOT; position: number; since: number }
  /** It started in this server run (and may have exited since: see `terminal.running` and `endedAt`). */
  | { state: 'started'; profile: string; terminal: Terminal; endedAt?: number }
  /** It could not start; the session was marked `failed`. */
  | { state: 'failed'; profile: string; reason: string }
  /** The session had ended before this server run started: it is not run again. */
  | { state: 'ended' };

type Entry =
  | { state: 'pending'; profile: string }
  | { state: 'started'; profile: string; terminal: Terminal; endedAt?: number; stopping?: StopSignal; recorded: Promise<void> }
  | { state: 'failed'; profile: string; reason: string }
  | { state: 'ended' };

/** Runs of this server: terminals started, ended on their own or by a stop, failed to start. */
export interface SessionTotals {
  started: number;
  exited: number;
  failed: number;
}

/**
 * One terminal per session of `tasks/<project>`, running the session's profile: the terminal's id is
 * the session id. A session created (by any client, over any transport) gets a terminal, a deleted
 * one loses it, and the sessions still live when the server starts get theirs again.
 *
 * **The status is the process's.** This class records it — `running` once the program runs,
 * `exited` with `exitCode` (the shell's convention: 128 + signal number when a signal ended it),
 * `signal` and `reason: 'stopped'` for a stop, `failed` with a `reason` when it cannot start — with
 * command ids it issues and tells apart ({@link issued}), so the server's command check can refuse
 * the same changes from clients.
 *
 * **A restart records only what changed.** A shutdown records nothing (the program did not end: the
 * server did), so a session whose program was running stays `running`, and the next start respawns
 * it without recording anything; one that was waiting for a slot records `running` when it starts;
 * one whose profile or program is gone records `failed`. Sessions that had ended (`exited`, `failed`)
 * stay ended and are not run again. A session whose program exits on its own keeps its exit until it
 * is deleted.
 *
 * When every terminal slot is taken (the manager's `maxTerminals`), a new session waits in line and
 * gets its terminal as soon as a slot frees; meanwhile it stays `starting`, and {@link status}, the
 * manager's `waiting()` and `terminal.attach` (`UNKNOWN_STREAM`, reason `waitingForTerminalSlot`)
 * say why.
 *
 * The terminals are the server's own work, spawned in reaction to events, which do not say who created
 * the session: they count against `maxTerminals` only, not against `maxTerminalsPerIdentity`.
 */
export class SessionTerminals {
  readonly #options: SessionTerminalsOptions;
  readonly #stream: string;
  readonly #clock: Clock;
  /** Session id → what became of its terminal (a failure is not retried). */
  readonly #sessions = new Map<string, Entry>();
  /** Ids of the commands this class is running right now: its records, and nobody else's. */
  readonly #issued = new Set<string>();
  readonly #listeners = new Set<() => void>();
  readonly #totals: SessionTotals = { started: 0, exited: 0, failed: 0 };
  #feed: StreamFeed | undefined;
  #dirty = false;
  #draining = false;
  #idle: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(options: SessionTerminalsOptions) {
    this.#options = options;
    this.#stream = `tasks/${options.project}`;
    this.#clock = options.clock ?? systemClock;
  }

  /** Follows the sessions of `tasks/<project>`; resolves once the sessions present have their terminals. */
  static async start(options: SessionTerminalsOptions): Promise<SessionTerminals> {
    const self = new SessionTerminals(options);
    const { version } = await options.hub.read(self.#stream);
    self.#feed = await StreamFeed.start(options.hub, self.#stream, version, {
      snapshot: () => self.#schedule(),
      event: () => self.#schedule(),
      end: (reason) => {
        if (!self.#closed) options.onError(new Error(reason), `following ${self.#stream} for terminals`);
      },
    });
    self.#schedule();
    await self.settled();
    return self;
  }

  get project(): string {
    return this.#options.project;
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
    if (entry.state === 'started') {
      return { state: 'started', profile: entry.profile, terminal: entry.terminal, ...(entry.endedAt !== undefined && { endedAt: entry.endedAt }) };
    }
    if (entry.state !== 'pending') return entry;
    const waiting = this.#options.terminals.waitingFor(sessionId);
    return waiting
      ? { state: 'waiting', profile: entry.profile, reason: WAITING_FOR_TERMINAL_SLOT, position: waiting.position, since: waiting.since }
      : { state: 'starting', profile: entry.profile };
  }

  /** Runs of this server so far. */
  get totals(): Readonly<SessionTotals> {
    return { ...this.#totals };
  }

  /** True for the id of a command this class is running: a status record of the server's own. */
  issued(commandId: string): boolean {
    return this.#issued.has(commandId);
  }

  /**
   * Called whenever a terminal starts, ends, fails, or joins or leaves the line — and again once the
   * session's status says so (the record is in the hub's state), so a listener that reads the state
   * then sees it.
   */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #changed(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        this.#options.onError(error, 'a listener of session terminal changes');
      }
    }
  }

  /**
   * Stops a session's program: `signal` to its process group (default SIGHUP, as when a terminal
   * window closes), SIGKILL to whatever is left after the grace period. Resolves once the exit is
   * recorded — `exited` with `exitCode`, `signal` and `reason: 'stopped'`; the session is kept. A
   * session waiting for a slot leaves the line and is recorded `exited` (`reason: 'stopped'`, no exit
   * code). Answers `notRunning` when its program has already ended (nothing changes), `unknown` for a
   * session this class has not seen.
   */
  async stop(sessionId: string, signal: StopSignal = 'SIGHUP'): Promise<'stopped' | 'notRunning' | 'unknown'> {
    await this.settled();
    if (!this.#sessions.has(sessionId) && !this.#closed) {
      // Created a moment ago: its event may not have reached this class yet, the hub's state has it.
      this.#schedule();
      await this.settled();
    }
    const entry = this.#sessions.get(sessionId);
    if (entry === undefined) return 'unknown';
    if (entry.state === 'pending') {
      // Only a spawn waiting in line is still pending once settled.
      await this.#options.terminals.remove(sessionId);
      this.#sessions.set(sessionId, { state: 'ended' });
      this.#changed();
      await this.#record(sessionId, { status: 'exited', reason: STOPPED }, 'stop');
      return 'stopped';
    }
    if (entry.state !== 'started' || !entry.terminal.running) return 'notRunning';
    entry.stopping ??= signal;
    const { terminal } = entry;
    if (signal === 'SIGHUP') {
      void terminal.close();
    } else {
      terminal.kill(signal);
      const escalate = this.#clock.setTimeout(() => void terminal.close(), DEFAULT_KILL_GRACE_MS);
      void terminal.exited.then(() => this.#clock.clearTimeout(escalate));
    }
    await entry.recorded;
    return 'stopped';
  }

  /** Resolves once every change seen so far has been acted on. */
  async settled(): Promise<void> {
    while (this.#draining) await this.#idle;
  }

  /**
   * Stops following the sessions. Call it before the hub closes: the terminals the hub's close then
   * ends are not recorded as exited (a shutdown is not the program's exit; the next start respawns them).
   */
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
    for (const [id, session] of Object.entries(sessions)) {
      if (this.#closed) return;
      if (this.#sessions.has(id)) continue;
      if (session.status === 'exited' || session.status === 'failed') this.#sessions.set(id, { state: 'ended' });
      else await this.#spawn(session);
    }
  }

  async #spawn(session: Session): Promise<void> {
    const sessionId = session.id;
    const entry: Entry = { state: 'pending', profile: session.profile ?? this.#options.profiles.defaultName };
    this.#sessions.set(sessionId, entry);
    if (!TERMINAL_ID_PATTERN.test(sessionId)) {
      // Session ids allow a leading `.` `:` `-` and up to 128 characters; terminal ids do not.
      this.#failed(sessionId, entry, new Error(`session id ${JSON.stringify(sessionId)} cannot name a terminal`));
      return;
    }
    let starting: Promise<Terminal>;
    let input: string | undefined;
    try {
      // The profile may be gone since the session was created (the server restarted with other profiles).
      const launch = this.#options.profiles.launch(session, this.#options.project);
      input = launch.input;
      starting = this.#options.terminals.spawn(
        { id: sessionId, file: launch.file, args: launch.args, cwd: launch.cwd, env: launch.env, project: this.#options.project },
        { wait: true },
      );
    } catch (error) {
      this.#failed(sessionId, entry, error);
      return;
    }
    if (this.#options.terminals.waitingFor(sessionId)) {
      this.#changed();
      // In line for a slot: not awaited, so the other sessions (and deletions) are served meanwhile.
      starting.then((terminal) => this.#started(session, entry, terminal, input)).catch((error: unknown) => this.#failed(sessionId, entry, error));
      return;
    }
    try {
      await this.#started(session, entry, await starting, input);
    } catch (error) {
      this.#failed(sessionId, entry, error);
    }
  }

  async #started(session: Session, entry: Entry & { state: 'pending' }, terminal: Terminal, input: string | undefined): Promise<void> {
    const sessionId = session.id;
    if (this.#sessions.get(sessionId) !== entry || this.#closed) {
      // The session went (or was stopped) while its terminal was starting: the terminal goes too.
      if (this.#options.terminals.get(sessionId) === terminal) {
        void this.#options.terminals
          .remove(sessionId)
          .catch((error: unknown) => this.#options.onError(error, `removing the terminal of deleted session ${sessionId}`));
      }
      return;
    }
    let recordedExit!: () => void;
    const started: Entry = { state: 'started', profile: entry.profile, terminal, recorded: new Promise((resolve) => (recordedExit = resolve)) };
    this.#sessions.set(sessionId, started);
    this.#totals.started++;
    this.#changed();
    void terminal.exited.then((exit) => this.#exited(sessionId, started, exit).finally(recordedExit));
    if (input !== undefined && terminal.running) terminal.write(input);
    // Recorded only when it changes: a session respawned by a restart is `running` already.
    let current: Session | undefined;
    try {
      current = ((await this.#options.hub.read(this.#stream)).state as TasksState).sessions[sessionId];
    } catch (error) {
      if (!this.#closed) this.#options.onError(error, `reading session ${sessionId} to record its start`);
      return;
    }
    if (current !== undefined && current.status !== 'running' && terminal.running && this.#sessions.get(sessionId) === started) {
      await this.#record(sessionId, { status: 'running' }, 'start');
    }
  }

  async #exited(sessionId: string, entry: Entry & { state: 'started' }, exit: ExitInfo): Promise<void> {
    // A shutdown is not the program's end (see the class comment); a deleted session has nothing to record.
    if (this.#closed || this.#sessions.get(sessionId) !== entry) return;
    entry.endedAt = this.#clock.now();
    this.#totals.exited++;
    this.#changed();
    await this.#record(
      sessionId,
      {
        status: 'exited',
        exitCode: statusCode(exit),
        ...(exit.signal !== undefined && { signal: exit.signal }),
        ...(entry.stopping !== undefined && { reason: STOPPED }),
      },
      'exit',
    );
  }

  /** The terminal could not start: the session says `failed` (not `starting` for ever), with the reason. */
  #failed(sessionId: string, entry: Entry, error: unknown): void {
    // Removed from the line because its session was deleted or stopped, or the server is closing: nothing to say.
    if (this.#closed || this.#sessions.get(sessionId) !== entry || isCancelled(error)) return;
    const reason = error instanceof Error ? error.message : String(error);
    this.#sessions.set(sessionId, { state: 'failed', profile: entry.state === 'pending' ? entry.profile : '', reason });
    this.#totals.failed++;
    this.#changed();
    this.#options.onError(error, `starting the terminal of session ${sessionId}`);
    void this.#record(sessionId, { status: 'failed', reason: reason.trim().slice(0, TASK_LIMITS.reason) || 'could not start' }, 'failed');
  }

  async #kill(sessionId: string): Promise<void> {
    this.#sessions.delete(sessionId);
    this.#changed();
    // Also takes it out of the line if it is still waiting for a slot.
    await this.#options.terminals.remove(sessionId);
  }

  /** One status record, under a command id this class issued (so the server's check lets it through). */
  async #record(sessionId: string, changes: Omit<SessionChanges, 'name'>, what: string): Promise<void> {
    const id = `terminals:${what}:${randomUUID()}`;
    this.#issued.add(id);
    try {
      await this.#options.hub.execute({ id, stream: this.#stream, type: 'session.update', payload: { id: sessionId, ...changes } });
      this.#changed();
    } catch (error) {
      // A session deleted meanwhile has nothing to record; a hub shutting down records nothing more.
      const unavailable = error instanceof LockstepError && error.code === 'UNAVAILABLE';
      if (!isGoneSession(error) && !(unavailable && this.#closed)) this.#options.onError(error, `recording ${what} of session ${sessionId}`);
    } finally {
      this.#issued.delete(id);
    }
  }
}

function isCancelled(error: unknown): boolean {
  return error instanceof LockstepError && (error.data as { reason?: unknown } | undefined)?.reason === SPAWN_CANCELLED;
}

/** The session was deleted before it could be marked. */
function isGoneSession(error: unknown): boolean {
  return error instanceof LockstepError && (error.data as { reason?: unknown } | undefined)?.reason === 'session.notFound';
}

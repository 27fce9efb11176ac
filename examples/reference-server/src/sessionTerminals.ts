import { TERMINAL_ID_PATTERN, type Terminal, type TerminalManager } from '@lockstep/pty';
import type { Event, TasksState } from '@lockstep/core';
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

/**
 * One shell per session of `tasks/<project>`: the terminal's id is the session id. A session created
 * (by any client, over any transport) gets a terminal, a deleted one loses it, and the sessions
 * already there at start get theirs. The terminal extension records each terminal's lifecycle in the
 * same stream (`session.update {status: 'running'}`, then `'exited'` with the exit code), so every
 * client sees a session's shell start and end.
 *
 * Each session gets one terminal per server run: a shell that exits leaves its session `exited`
 * until the session is deleted (or the server restarts).
 */
export class SessionTerminals {
  readonly #options: SessionTerminalsOptions;
  readonly #stream: string;
  /** Session id → its terminal (undefined when spawning it failed: not retried). */
  readonly #spawned = new Map<string, Terminal | undefined>();
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
    return this.#spawned.get(sessionId);
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
    for (const id of [...this.#spawned.keys()]) {
      if (this.#closed) return;
      if (!Object.hasOwn(sessions, id)) await this.#kill(id);
    }
    for (const id of Object.keys(sessions)) {
      if (this.#closed) return;
      if (!this.#spawned.has(id)) await this.#spawn(id);
    }
  }

  async #spawn(sessionId: string): Promise<void> {
    if (!TERMINAL_ID_PATTERN.test(sessionId)) {
      // Session ids allow a leading `.` `:` `-` and up to 128 characters; terminal ids do not.
      this.#spawned.set(sessionId, undefined);
      this.#options.onError(new Error(`session id ${JSON.stringify(sessionId)} cannot name a terminal`), `starting the terminal of session ${sessionId}`);
      return;
    }
    const { file, args } = this.#options.shell;
    try {
      this.#spawned.set(sessionId, await this.#options.terminals.spawn({ id: sessionId, file, args: [...args], project: this.#options.project }));
    } catch (error) {
      this.#spawned.set(sessionId, undefined);
      this.#options.onError(error, `starting the terminal of session ${sessionId}`);
    }
  }

  async #kill(sessionId: string): Promise<void> {
    this.#spawned.delete(sessionId);
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

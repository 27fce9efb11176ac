import { constants as osConstants } from 'node:os';
import { LockstepError, systemClock, type Clock, type TasksState, type TimerHandle } from '@lockstep/core';
import type { Hub } from '@lockstep/server';
import { Emitter } from './emitter.js';
import { parseSpawnOptions, type SpawnOptions } from './spawnPolicy.js';
import { Terminal, type ExitInfo, type TerminalSettings } from './terminal.js';

/** At most this many terminals (running or retained) per manager unless configured otherwise. */
export const DEFAULT_MAX_TERMINALS = 64;
/** An exited terminal stays attachable (its scrollback replayable) this long unless configured otherwise. */
export const DEFAULT_RETAIN_EXITED_MS = 5 * 60_000;

const RECORD_ATTEMPTS = 5;
const RECORD_BACKOFF_MS = 100;

export interface TerminalManagerOptions extends TerminalSettings {
  /**
   * The hub whose tasks stream records terminal lifecycles (a function, because the hub is built
   * with the extension that owns this manager). Without it nothing is recorded.
   */
  hub?: () => Hub;
  /** Default 64. Spawning one more is refused (`RATE_LIMITED`). */
  maxTerminals?: number;
  /** How long an exited terminal stays attachable. Default 5 min; `Infinity` keeps it until `remove`. */
  retainExitedMs?: number;
}

/**
 * The terminals of a hub, by id. Spawning happens here, on the server side, never from a client.
 *
 * A terminal with a `project` is recorded in `tasks/<project>` as a session of kind `terminal`:
 * `session.create {status: 'running'}` when it starts (or `session.update {status: 'running'}` when
 * the session already exists), `session.update {status: 'exited', exitCode}` when it ends, and its
 * focus is released (`focus.close` on `focus/<project>`). Command ids derive from the terminal id and
 * its run id (`pty:<id>:<run>:start|exit|unfocus`), so retries are deduplicated by the hub.
 */
export class TerminalManager {
  readonly #terminals = new Map<string, Terminal>();
  readonly #options: TerminalManagerOptions;
  readonly #clock: Clock;
  readonly #retainTimers = new Map<Terminal, TimerHandle>();
  readonly #spawned: Emitter<Terminal>;
  /** Per terminal: recording its start, waiting for its exit, recording that. */
  readonly #lifecycles = new Set<Promise<void>>();
  #closing: Promise<void> | undefined;

  constructor(options: TerminalManagerOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.#spawned = new Emitter((error) => this.#report(error, 'spawn listener'));
  }

  get size(): number {
    return this.#terminals.size;
  }

  get(id: string): Terminal | undefined {
    return this.#terminals.get(id);
  }

  list(): Terminal[] {
    return [...this.#terminals.values()];
  }

  /** Called with every terminal spawned from now on. */
  onSpawn(listener: (terminal: Terminal) => void): () => void {
    return this.#spawned.on(listener);
  }

  /**
   * Spawns a program on a new terminal. Resolves once it runs and, for a terminal with a project,
   * once its session is recorded in the tasks stream (a recording failure is reported through
   * `onError`, not thrown: the terminal runs anyway). Throws `INVALID_PARAMS` for options the spawn
   * policy refuses or an id already running, `RATE_LIMITED` past `maxTerminals`, `UNAVAILABLE` once
   * closing.
   */
  async spawn(options: SpawnOptions): Promise<Terminal> {
    if (this.#closing) throw new LockstepError('UNAVAILABLE', 'terminal manager is closing');
    const parsed = parseSpawnOptions(options);
    const previous = parsed.id === undefined ? undefined : this.#terminals.get(parsed.id);
    if (previous?.running) throw new LockstepError('INVALID_PARAMS', `terminal ${parsed.id} is already running`, { reason: 'terminal.exists', terminalId: parsed.id });
    const max = this.#options.maxTerminals ?? DEFAULT_MAX_TERMINALS;
    if (this.#terminals.size - (previous ? 1 : 0) >= max) {
      throw new LockstepError('RATE_LIMITED', `at most ${max} terminals`, { maxTerminals: max });
    }
    const terminal = new Terminal(parsed, this.#options);
    if (previous) this.#forget(previous);
    this.#terminals.set(terminal.id, terminal);
    const started = this.#recordStart(terminal);
    const lifecycle = terminal.exited.then(async (exit) => {
      await started;
      await this.#recordExit(terminal, exit);
      this.#scheduleRemoval(terminal);
    });
    this.#lifecycles.add(lifecycle);
    void lifecycle.finally(() => this.#lifecycles.delete(lifecycle));
    await started;
    this.#spawned.emit(terminal);
    return terminal;
  }

  /** Closes a terminal (see `Terminal.close`) and forgets it: attached viewers are detached. */
  async remove(id: string): Promise<void> {
    const terminal = this.#terminals.get(id);
    if (!terminal) return;
    await terminal.close();
    if (this.#terminals.get(id) === terminal) this.#forget(terminal);
  }

  /**
   * Closes every terminal and everything they started (SIGHUP, then SIGKILL after `killGraceMs`),
   * and waits for them. Call it before `hub.close()` to have the exits recorded in the tasks stream:
   * the hub's own close also runs it (through the extension), but a closed hub records nothing.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all(this.list().map((terminal) => terminal.close()));
      // Each exit is recorded (or found unrecordable) before the terminals are forgotten.
      await Promise.all(this.#lifecycles);
      for (const terminal of this.list()) this.#forget(terminal);
    })();
    return this.#closing;
  }

  #forget(terminal: Terminal): void {
    const timer = this.#retainTimers.get(terminal);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    this.#retainTimers.delete(terminal);
    if (this.#terminals.get(terminal.id) === terminal) this.#terminals.delete(terminal.id);
    terminal.dispose();
  }

  #scheduleRemoval(terminal: Terminal): void {
    const ms = this.#options.retainExitedMs ?? DEFAULT_RETAIN_EXITED_MS;
    if (!Number.isFinite(ms) || this.#closing || this.#terminals.get(terminal.id) !== terminal) return;
    this.#retainTimers.set(
      terminal,
      this.#clock.setTimeout(() => this.#forget(terminal), ms),
    );
  }

  async #recordStart(terminal: Terminal): Promise<void> {
    const hub = this.#recordingHub(terminal, 'tasks');
    if (!hub) return;
    const stream = `tasks/${terminal.project}`;
    try {
      const { state } = await hub.read(stream);
      const exists = Object.hasOwn((state as TasksState).sessions, terminal.id);
      const command = exists
        ? { type: 'session.update', payload: { id: terminal.id, status: 'running' } }
        : { type: 'session.create', payload: { id: terminal.id, kind: 'terminal', status: 'running', ...(terminal.name !== undefined && { name: terminal.name }) } };
      await this.#execute(hub, { id: commandId(terminal, 'start'), stream, ...command });
    } catch (error) {
      this.#report(error, `recording the start of terminal ${terminal.id} in ${stream}`);
    }
  }

  async #recordExit(terminal: Terminal, exit: ExitInfo): Promise<void> {
    const tasks = this.#recordingHub(terminal, 'tasks');
    if (tasks) {
      const stream = `tasks/${terminal.project}`;
      const payload = { id: terminal.id, status: 'exited', exitCode: statusCode(exit) };
      await this.#execute(tasks, { id: commandId(terminal, 'exit'), stream, type: 'session.update', payload }).catch((error: unknown) =>
        this.#reportUnlessClosing(error, `recording the exit of terminal ${terminal.id} in ${stream}`),
      );
    }
    // A dead terminal keeps no focus (SPEC §4.6: no ghost entries).
    const focus = this.#recordingHub(terminal, 'focus');
    if (focus) {
      const stream = `focus/${terminal.project}`;
      await this.#execute(focus, { id: commandId(terminal, 'unfocus'), stream, type: 'focus.close', payload: { sessionId: terminal.id } }).catch((error: unknown) =>
        this.#reportUnlessClosing(error, `releasing the focus of terminal ${terminal.id} in ${stream}`),
      );
    }
  }

  #recordingHub(terminal: Terminal, domain: string): Hub | undefined {
    if (terminal.project === undefined || !this.#options.hub) return undefined;
    const hub = this.#options.hub();
    return hub.domainNames.includes(domain) ? hub : undefined;
  }

  /** Runs a command, retrying (same id, so at most once applied) while the hub answers UNAVAILABLE. */
  async #execute(hub: Hub, command: { id: string; stream: string; type: string; payload: unknown }): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await hub.execute(command);
        return;
      } catch (error) {
        const retry = error instanceof LockstepError && error.code === 'UNAVAILABLE' && attempt < RECORD_ATTEMPTS && !this.#closing;
        if (!retry) throw error;
        await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, RECORD_BACKOFF_MS * 2 ** (attempt - 1)));
      }
    }
  }

  #reportUnlessClosing(error: unknown, context: string): void {
    // A hub that is shutting down records nothing more: expected when the hub closes first.
    if (this.#closing && error instanceof LockstepError && error.code === 'UNAVAILABLE') return;
    this.#report(error, context);
  }

  #report(error: unknown, context: string): void {
    const handler = this.#options.onError ?? ((e, c) => console.error(`[lockstep pty] ${c}:`, e));
    handler(error, context);
  }
}

function commandId(terminal: Terminal, step: 'start' | 'exit' | 'unfocus'): string {
  return `pty:${terminal.id}:${terminal.runId}:${step}`;
}

/** The exit status recorded in the tasks stream: the exit code, or 128 + the signal number (the shell's convention). */
export function statusCode(exit: ExitInfo): number {
  if (exit.signal === undefined) return exit.exitCode;
  const number = (osConstants.signals as Record<string, number | undefined>)[exit.signal];
  return number === undefined ? exit.exitCode : 128 + number;
}

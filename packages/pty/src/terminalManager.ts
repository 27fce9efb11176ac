import { constants as osConstants } from 'node:os';
import { LockstepError, systemClock, type Clock, type TasksState, type TimerHandle } from '@lockstep/core';
import type { Hub } from '@lockstep/server';
import { Emitter } from './emitter.js';
import { SpawnQueue, type WaitingSpawn } from './spawnQueue.js';
import { parseSpawnOptions, type SpawnOptions } from './spawnPolicy.js';
import { Terminal, type ExitInfo, type TerminalSettings } from './terminal.js';

/** At most this many terminals (running or retained) per manager unless configured otherwise. */
export const DEFAULT_MAX_TERMINALS = 64;
/** At most this many terminals (running, or waiting for a slot) per owner unless configured otherwise. */
export const DEFAULT_MAX_TERMINALS_PER_IDENTITY = 16;
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
  /**
   * Terminals at once, running or kept after their exit (see `retainExitedMs`). Default 64. A spawn
   * past it takes the slot of an exited terminal if there is one (the earliest started: its scrollback
   * is let go); otherwise it waits for a slot (`wait`) or is refused (`RATE_LIMITED`, reason
   * `maxTerminals`).
   */
  maxTerminals?: number;
  /**
   * Terminals one owner (`SpawnPlacement.owner`, an identity id) may have running or waiting for a slot.
   * Default 16; `Infinity` turns it off. One more is refused at once (`RATE_LIMITED`, reason
   * `maxTerminalsPerIdentity`), never queued. Spawns without an owner count only against `maxTerminals`.
   */
  maxTerminalsPerIdentity?: number;
  /** How long an exited terminal stays attachable. Default 5 min; `Infinity` keeps it until `remove`. */
  retainExitedMs?: number;
  /**
   * Whether a terminal with a `project` records its start and exit as a session of
   * `tasks/<project>` (see the class comment). Default true. `false` when the application records its
   * sessions' lifecycle itself (the reference server does: profiles, signals, and nothing recorded at
   * shutdown). The focus release at exit (`focus.close`) is not affected.
   */
  recordSessions?: boolean;
}

/** Where a spawn stands in the manager's limits. */
export interface SpawnPlacement {
  /**
   * Who the terminal is for: the id of the identity whose request caused the spawn. Counted against
   * `maxTerminalsPerIdentity`. Omit it for the server's own terminals.
   */
  owner?: string;
  /**
   * When every slot is taken: wait in line (first come, first served) instead of being refused. The
   * spawn is queued before `spawn` returns, so `waitingFor(id)` tells at once; it starts when a slot
   * frees (a terminal is removed, or exits while someone waits) and is cancelled by `remove(id)`. Needs
   * an `id`. Default false.
   */
  wait?: boolean;
}

/** Why a waiting spawn was settled without a terminal: `remove(id)` before it started. */
export const SPAWN_CANCELLED = 'terminal.spawnCancelled';
/** The reason given for a terminal whose spawn waits for a slot (`terminal.attach` answers it). */
export const WAITING_FOR_TERMINAL_SLOT = 'waitingForTerminalSlot';

/**
 * The terminals of a hub, by id. Spawning happens here, on the server side, never from a client.
 *
 * A terminal with a `project` is recorded in `tasks/<project>` as a session of kind `terminal`:
 * `session.create {status: 'running'}` when it starts (or `session.update {status: 'running'}` when
 * the session already exists), `session.update {status: 'exited', exitCode}` when it ends, and its
 * focus is released (`focus.close` on `focus/<project>`) — except when it ends because the manager
 * closes (`close()`, the hub shutting down): focus is left as it is, to outlive a restart. Command
 * ids derive from the terminal id and its run id (`pty:<id>:<run>:start|exit|unfocus`), so retries
 * are deduplicated by the hub.
 */
export class TerminalManager {
  readonly #terminals = new Map<string, Terminal>();
  readonly #options: TerminalManagerOptions;
  readonly #clock: Clock;
  readonly #retainTimers = new Map<Terminal, TimerHandle>();
  readonly #owners = new Map<Terminal, string>();
  readonly #queue = new SpawnQueue();
  #drainScheduled = false;
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

  /** The spawns waiting for a slot, in the order they will start. */
  waiting(): WaitingSpawn[] {
    return this.#queue.list();
  }

  /** The place in line of a spawn waiting for a slot, if `id` is one. */
  waitingFor(id: string): WaitingSpawn | undefined {
    return this.#queue.find(id);
  }

  /** The limits in force (options or defaults). */
  get limits(): { maxTerminals: number; maxTerminalsPerIdentity: number } {
    return { maxTerminals: this.#maxTerminals, maxTerminalsPerIdentity: this.#options.maxTerminalsPerIdentity ?? DEFAULT_MAX_TERMINALS_PER_IDENTITY };
  }

  get #maxTerminals(): number {
    return this.#options.maxTerminals ?? DEFAULT_MAX_TERMINALS;
  }

  /** Called with every terminal spawned from now on. */
  onSpawn(listener: (terminal: Terminal) => void): () => void {
    return this.#spawned.on(listener);
  }

  /**
   * Spawns a program on a new terminal. Resolves once it runs and, for a terminal with a project,
   * once its session is recorded in the tasks stream (a recording failure is reported through
   * `onError`, not thrown: the terminal runs anyway). Throws `INVALID_PARAMS` for options the spawn
   * policy refuses or an id already running or waiting, `RATE_LIMITED` past `maxTerminalsPerIdentity`
   * (reason `maxTerminalsPerIdentity`) or, unless `placement.wait`, when no slot is free (reason
   * `maxTerminals`), `UNAVAILABLE` once closing or when a waiting spawn is removed (reason
   * {@link SPAWN_CANCELLED}).
   */
  async spawn(options: SpawnOptions, placement: SpawnPlacement = {}): Promise<Terminal> {
    // Everything up to the queueing is synchronous: a spawn that waits is in line once this returns.
    if (this.#closing) throw new LockstepError('UNAVAILABLE', 'terminal manager is closing');
    const parsed = parseSpawnOptions(options);
    const { id } = parsed;
    const previous = id === undefined ? undefined : this.#terminals.get(id);
    if (previous?.running) throw new LockstepError('INVALID_PARAMS', `terminal ${id} is already running`, { reason: 'terminal.exists', terminalId: id });
    if (id !== undefined && this.#queue.has(id)) {
      throw new LockstepError('INVALID_PARAMS', `terminal ${id} is already waiting for a slot`, { reason: 'terminal.waiting', terminalId: id });
    }
    const { owner } = placement;
    if (owner !== undefined) {
      const { maxTerminalsPerIdentity } = this.limits;
      if (this.#ownedBy(owner) >= maxTerminalsPerIdentity) {
        throw new LockstepError('RATE_LIMITED', `at most ${maxTerminalsPerIdentity} terminals per identity`, {
          reason: 'maxTerminalsPerIdentity',
          maxTerminalsPerIdentity,
        });
      }
    }
    // Whoever waits goes first: a new spawn never takes a slot from the line.
    if (this.#queue.length > 0 || !this.#makeRoom(previous)) {
      const max = this.#maxTerminals;
      if (!placement.wait) throw new LockstepError('RATE_LIMITED', `at most ${max} terminals`, { reason: 'maxTerminals', maxTerminals: max });
      if (id === undefined) throw new LockstepError('INVALID_PARAMS', 'a spawn that waits for a slot needs an id', { reason: 'terminal.idRequired' });
      return this.#queue.push(id, owner, this.#clock.now(), parsed);
    }
    return this.#start(parsed, owner);
  }

  /** Starts a terminal in a free slot (the terminal is in the map before this first awaits). */
  async #start(options: SpawnOptions, owner: string | undefined): Promise<Terminal> {
    const terminal = new Terminal(options, this.#options);
    const previous = this.#terminals.get(terminal.id);
    if (previous) this.#forget(previous);
    this.#terminals.set(terminal.id, terminal);
    if (owner !== undefined) this.#owners.set(terminal, owner);
    const started = this.#recordStart(terminal);
    const lifecycle = terminal.exited.then(async (exit) => {
      await started;
      await this.#recordExit(terminal, exit);
      this.#scheduleRemoval(terminal);
      // Its slot is up for grabs: a spawn waiting in line takes it now.
      this.#scheduleDrain();
    });
    this.#lifecycles.add(lifecycle);
    void lifecycle.finally(() => this.#lifecycles.delete(lifecycle));
    await started;
    this.#spawned.emit(terminal);
    return terminal;
  }

  /** Running terminals and waiting spawns of an owner. */
  #ownedBy(owner: string): number {
    let count = this.#queue.countOwner(owner);
    for (const [terminal, holder] of this.#owners) if (holder === owner && terminal.running) count++;
    return count;
  }

  /**
   * Whether a terminal can start now (replacing `previous`, an exited terminal of the same id, if
   * any): a slot is free, or one is freed by forgetting the oldest exited terminal (kept for replay).
   */
  #makeRoom(previous: Terminal | undefined): boolean {
    if (this.#terminals.size - (previous ? 1 : 0) < this.#maxTerminals) return true;
    const oldest = [...this.#terminals.values()].find((terminal) => !terminal.running && terminal !== previous);
    if (oldest === undefined) return false;
    this.#forget(oldest);
    return this.#terminals.size - (previous ? 1 : 0) < this.#maxTerminals;
  }

  /** Starts waiting spawns while there is room (soon, not inside the caller's bookkeeping). */
  #scheduleDrain(): void {
    if (this.#drainScheduled || this.#queue.length === 0) return;
    this.#drainScheduled = true;
    queueMicrotask(() => {
      this.#drainScheduled = false;
      while (!this.#closing) {
        const next = this.#queue.peek();
        if (next === undefined) return;
        const previous = this.#terminals.get(next.id);
        if (previous?.running || !this.#makeRoom(previous)) return;
        this.#queue.shift();
        // A spawn that fails now (the policy changed its mind, the program is gone) fails alone.
        this.#start(next.options, next.owner).then(next.resolve, next.reject);
      }
    });
  }

  /**
   * Closes a terminal (see `Terminal.close`) and forgets it: attached viewers are detached. A spawn of
   * that id still waiting for a slot leaves the line (its `spawn` fails with reason {@link SPAWN_CANCELLED}).
   */
  async remove(id: string): Promise<void> {
    const waiting = this.#queue.take(id);
    waiting?.reject(new LockstepError('UNAVAILABLE', `terminal ${id} was removed before it started`, { reason: SPAWN_CANCELLED, terminalId: id }));
    const terminal = this.#terminals.get(id);
    if (!terminal) return;
    await terminal.close();
    if (this.#terminals.get(id) === terminal) this.#forget(terminal);
  }

  /**
   * Closes every terminal and everything they started (SIGHUP, then SIGKILL after `killGraceMs`),
   * and waits for them. Call it before `hub.close()` to have the exits recorded in the tasks stream:
   * the hub's own close also runs it (through the extension), but a closed hub records nothing. The
   * focus sets are left alone: a terminal closed this way releases no focus.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const waiting of this.#queue.clear()) waiting.reject(new LockstepError('UNAVAILABLE', 'terminal manager is closing'));
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
    this.#owners.delete(terminal);
    if (this.#terminals.get(terminal.id) === terminal) this.#terminals.delete(terminal.id);
    terminal.dispose();
    this.#scheduleDrain();
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
    const hub = this.#options.recordSessions === false ? undefined : this.#recordingHub(terminal, 'tasks');
    if (!hub) return;
    const stream = `tasks/${terminal.project}`;
    try {
      const { state } = await hub.read(stream);
      const exists = Object.hasOwn((state as TasksState).sessions, terminal.id);
      const command = exists
        ? { type: 'session.update', payload: { id: terminal.id, status: 'running' } }
        : {
            type: 'session.create',
            payload: { id: terminal.id, kind: 'terminal', status: 'running', ...(terminal.name !== undefined && { name: terminal.name }) },
          };
      await this.#execute(hub, { id: commandId(terminal, 'start'), stream, ...command });
    } catch (error) {
      this.#report(error, `recording the start of terminal ${terminal.id} in ${stream}`);
    }
  }

  async #recordExit(terminal: Terminal, exit: ExitInfo): Promise<void> {
    const tasks = this.#options.recordSessions === false ? undefined : this.#recordingHub(terminal, 'tasks');
    if (tasks) {
      const stream = `tasks/${terminal.project}`;
      const payload = { id: terminal.id, status: 'exited', exitCode: statusCode(exit) };
      await this.#execute(tasks, { id: commandId(terminal, 'exit'), stream, type: 'session.update', payload }).catch((error: unknown) =>
        this.#reportUnlessClosing(error, `recording the exit of terminal ${terminal.id} in ${stream}`),
      );
    }
    // A dead terminal keeps no focus (SPEC §4.6: no ghost entries) — unless it ended because the
    // manager is closing (the server shutting down): the focus set is the user's layout, and the
    // session's terminal comes back with the server, so the set outlives the restart untouched.
    const focus = this.#closing ? undefined : this.#recordingHub(terminal, 'focus');
    if (focus) {
      const stream = `focus/${terminal.project}`;
      await this.#execute(focus, { id: commandId(terminal, 'unfocus'), stream, type: 'focus.close', payload: { sessionId: terminal.id } }).catch(
        (error: unknown) => this.#reportUnlessClosing(error, `releasing the focus of terminal ${terminal.id} in ${stream}`),
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

import { randomUUID } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { LockstepError, systemClock, type Clock, type TimerHandle } from '@lockstep/core';
import { spawn as spawnPty, type IPty } from 'node-pty';
import { Emitter } from './emitter.js';
import { isAlive, killSession, signalGroup } from './processTree.js';
import { guardOutput } from './ptyDrain.js';
import { DEFAULT_SCROLLBACK_BYTES, Scrollback } from './scrollback.js';
import { MAX_TERMINAL_SIZE } from './protocol.js';
import { parseSpawnOptions, resolveSpawn, type SpawnOptions, type SpawnPolicy } from './spawnPolicy.js';

/** Output is held back this long to be sent as one chunk (about a frame at 60 Hz). */
export const DEFAULT_COALESCE_MS = 16;
/** …or until this many bytes are pending, whichever comes first; also the largest chunk a viewer is sent. */
export const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** How long `close()` waits after SIGHUP before it SIGKILLs what is left of the terminal's session. */
export const DEFAULT_KILL_GRACE_MS = 2_000;
/** The largest chunk size accepted: a base64 chunk must fit well within a 1 MiB frame. */
export const MAX_CHUNK_BYTES = 512 * 1024;

/** How a terminal's program ended. */
export interface ExitInfo {
  /** The exit status; 0 when a signal ended the program (see `signal`). */
  exitCode: number;
  /** The signal that ended the program (`SIGKILL`, `SIGHUP`, …), if one did. */
  signal?: string;
}

/** A range of output that became available: the bytes `[from, to)`. */
export interface OutputRange {
  from: number;
  to: number;
}

/** What a viewer needs of a terminal: its bytes by offset, its size and its fate. */
export interface TerminalSource {
  readonly id: string;
  /** Unique per spawn: offsets of one run mean nothing in another run of the same id. */
  readonly runId: string;
  readonly project: string | undefined;
  readonly cols: number;
  readonly rows: number;
  /** The oldest offset still in the scrollback. */
  readonly start: number;
  /** The end of the output released to viewers (coalesced): bytes `[start, end)` can be read. */
  readonly end: number;
  /** How the program ended, once it has (after its last output was released). */
  readonly exit: ExitInfo | undefined;
  readBase64(from: number, to: number): string;
  onOutput(listener: (range: OutputRange) => void): () => void;
  onExit(listener: (exit: ExitInfo) => void): () => void;
  onResize(listener: (size: { cols: number; rows: number }) => void): () => void;
  /** The terminal was removed: no more output or events. */
  onDispose(listener: () => void): () => void;
}

/** Output and process settings of terminals. */
export interface TerminalSettings {
  /** Rules for executables, environment and working directory. */
  policy?: SpawnPolicy;
  /** Bytes of output kept for replay. Default 1 MiB. */
  scrollbackBytes?: number;
  /** Output is coalesced for this long before viewers get it. Default 16 ms. */
  coalesceMs?: number;
  /** …or until this many bytes are pending. Also the largest `terminal.output` chunk. Default 64 KiB. */
  chunkBytes?: number;
  /** Between SIGHUP and SIGKILL when a terminal is closed. Default 2 s. */
  killGraceMs?: number;
  clock?: Clock;
  /** Errors of listeners. Default: console.error. */
  onError?: (error: unknown, context: string) => void;
}

/**
 * One program on a pseudo-terminal. Its output goes into a bounded scrollback with absolute byte
 * offsets and is released to listeners in coalesced ranges; nothing a viewer does ever pauses the
 * program. The program runs as the leader of its own session, so killing the terminal reaches
 * everything it started (see `close`).
 */
export class Terminal implements TerminalSource {
  readonly id: string;
  readonly runId = randomUUID().slice(0, 8);
  readonly project: string | undefined;
  readonly name: string | undefined;
  /** The executable that was spawned (absolute) and its arguments. */
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly pid: number;
  readonly startedAt: number;
  /** Resolves once the program has exited and its last output has been released. */
  readonly exited: Promise<ExitInfo>;
  readonly #pty: IPty;
  readonly #scrollback: Scrollback;
  readonly #clock: Clock;
  readonly #coalesceMs: number;
  readonly #chunkBytes: number;
  readonly #killGraceMs: number;
  readonly #output: Emitter<OutputRange>;
  readonly #exit: Emitter<ExitInfo>;
  readonly #resize: Emitter<{ cols: number; rows: number }>;
  readonly #dispose: Emitter<void>;
  #released = 0;
  #timer: TimerHandle | undefined;
  #exitInfo: ExitInfo | undefined;
  #resolveExit!: (exit: ExitInfo) => void;
  #cols: number;
  #rows: number;
  #disposed = false;
  #closing: Promise<ExitInfo> | undefined;
  /** Closes the hub's own descriptor of the pty's slave side (see ptyDrain.ts). */
  readonly #releaseSlave: () => void;

  constructor(options: SpawnOptions, settings: TerminalSettings = {}) {
    const parsed = parseSpawnOptions(options);
    const resolved = resolveSpawn(parsed, settings.policy);
    const chunkBytes = settings.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || chunkBytes > MAX_CHUNK_BYTES) throw new RangeError(`invalid chunkBytes: ${chunkBytes}`);
    const report = settings.onError ?? ((error: unknown, context: string) => console.error(`[lockstep pty] ${context}:`, error));
    this.id = parsed.id ?? `term_${randomUUID().slice(0, 12)}`;
    this.project = parsed.project;
    this.name = parsed.name;
    this.file = resolved.file;
    this.args = resolved.args;
    this.cwd = resolved.cwd;
    this.#cols = resolved.cols;
    this.#rows = resolved.rows;
    this.#clock = settings.clock ?? systemClock;
    this.#coalesceMs = settings.coalesceMs ?? DEFAULT_COALESCE_MS;
    if (!Number.isFinite(this.#coalesceMs) || this.#coalesceMs < 0) throw new RangeError(`invalid coalesceMs: ${this.#coalesceMs}`);
    this.#chunkBytes = chunkBytes;
    this.#killGraceMs = settings.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
    this.#scrollback = new Scrollback(settings.scrollbackBytes ?? DEFAULT_SCROLLBACK_BYTES);
    this.#output = new Emitter((error) => report(error, `terminal ${this.id}: output listener`));
    this.#exit = new Emitter((error) => report(error, `terminal ${this.id}: exit listener`));
    this.#resize = new Emitter((error) => report(error, `terminal ${this.id}: resize listener`));
    this.#dispose = new Emitter((error) => report(error, `terminal ${this.id}: dispose listener`));
    this.exited = new Promise((resolve) => {
      this.#resolveExit = resolve;
    });
    // `spawn(file, args)` is an exec of `file` with exactly these arguments (forkpty + execvp in
    // node-pty): no shell is involved, so no argument is ever parsed for metacharacters.
    // `encoding: null` hands over the raw bytes, which the scrollback counts.
    this.#pty = spawnPty(resolved.file, resolved.args, {
      name: resolved.env['TERM'] ?? 'xterm-256color',
      cols: resolved.cols,
      rows: resolved.rows,
      cwd: resolved.cwd,
      env: resolved.env,
      encoding: null,
    });
    this.pid = this.#pty.pid;
    this.startedAt = this.#clock.now();
    this.#releaseSlave = guardOutput(this.#pty, (data) => this.#onData(data));
    this.#pty.onData((data) => this.#onData(data as unknown as Buffer));
    this.#pty.onExit(({ exitCode, signal }) => this.#onExit(exitCode, signal));
  }

  get cols(): number {
    return this.#cols;
  }

  get rows(): number {
    return this.#rows;
  }

  get start(): number {
    return this.#scrollback.start;
  }

  get end(): number {
    return this.#released;
  }

  /** Bytes the program has written so far, released or still being coalesced. */
  get written(): number {
    return this.#scrollback.end;
  }

  get scrollbackBytes(): number {
    return this.#scrollback.capacity;
  }

  get exit(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  get running(): boolean {
    return this.#exitInfo === undefined;
  }

  readBase64(from: number, to: number): string {
    return this.#scrollback.readBase64(from, to);
  }

  /** A copy of the output bytes `[from, to)` (default: all released output still held). */
  read(from: number = this.start, to: number = this.#released): Buffer {
    return this.#scrollback.read(from, to);
  }

  onOutput(listener: (range: OutputRange) => void): () => void {
    return this.#output.on(listener);
  }

  onExit(listener: (exit: ExitInfo) => void): () => void {
    return this.#exit.on(listener);
  }

  onResize(listener: (size: { cols: number; rows: number }) => void): () => void {
    return this.#resize.on(listener);
  }

  onDispose(listener: () => void): () => void {
    return this.#dispose.on(listener);
  }

  /** Writes input to the program (strings as UTF-8). Throws once the program has exited. */
  write(data: string | Uint8Array): void {
    if (this.#exitInfo) throw new LockstepError('COMMAND_REJECTED', `terminal ${this.id} has exited`, { reason: 'terminal.exited', terminalId: this.id });
    this.#pty.write(typeof data === 'string' ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  /** Resizes the terminal; the program gets SIGWINCH. Sizes outside `1 … 1000` are refused (RangeError). */
  resize(cols: number, rows: number): void {
    for (const [label, value] of [
      ['cols', cols],
      ['rows', rows],
    ] as const) {
      if (!Number.isInteger(value) || value < 1 || value > MAX_TERMINAL_SIZE)
        throw new RangeError(`${label} must be an integer in 1…${MAX_TERMINAL_SIZE}, not ${value}`);
    }
    if (this.#exitInfo || (cols === this.#cols && rows === this.#rows)) return;
    this.#pty.resize(cols, rows);
    this.#cols = cols;
    this.#rows = rows;
    this.#resize.emit({ cols, rows });
  }

  /** Sends a signal to the terminal's process group (default SIGHUP, as when a terminal window closes). */
  kill(signal: NodeJS.Signals = 'SIGHUP'): void {
    if (this.#exitInfo) return;
    signalGroup(this.pid, signal);
  }

  /**
   * Ends the terminal and everything it started: SIGHUP to its process group, then after
   * `killGraceMs` SIGKILL to every process still in its session. Resolves with the exit once the
   * program is gone.
   */
  close(): Promise<ExitInfo> {
    if (this.#exitInfo) {
      killSession(this.pid);
      return Promise.resolve(this.#exitInfo);
    }
    if (this.#closing) return this.#closing;
    this.kill('SIGHUP');
    const timer = this.#clock.setTimeout(() => killSession(this.pid), this.#killGraceMs);
    this.#closing = this.exited.then((exit) => {
      this.#clock.clearTimeout(timer);
      return exit;
    });
    return this.#closing;
  }

  /** Stops every listener (after `terminal.dispose` listeners ran). The process is not touched: close it first. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#releaseSlave();
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#dispose.emit();
    for (const emitter of [this.#output, this.#exit, this.#resize, this.#dispose]) emitter.clear();
  }

  /** True while the program's own process exists (diagnostics). */
  get alive(): boolean {
    return isAlive(this.pid);
  }

  #onData(data: Buffer): void {
    this.#scrollback.write(data);
    if (this.#scrollback.end - this.#released >= this.#chunkBytes) this.#release();
    else if (this.#timer === undefined) this.#timer = this.#clock.setTimeout(() => this.#release(), this.#coalesceMs);
  }

  #release(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    const from = this.#released;
    const to = this.#scrollback.end;
    if (to === from || this.#disposed) return;
    this.#released = to;
    this.#output.emit({ from, to });
  }

  #onExit(exitCode: number, signal: number | undefined): void {
    // node-pty reports the exit once the pty has been read to the end: release the rest first.
    this.#release();
    this.#releaseSlave();
    const exit: ExitInfo = { exitCode };
    if (signal) exit.signal = signalName(signal);
    this.#exitInfo = exit;
    // The terminal owns its session: whatever the program left running there goes with it.
    killSession(this.pid);
    this.#resolveExit(exit);
    this.#exit.emit(exit);
  }
}

/** Spawns a program on a new pseudo-terminal. Throws `INVALID_PARAMS` for options the policy refuses. */
export function spawnTerminal(options: SpawnOptions, settings: TerminalSettings = {}): Terminal {
  return new Terminal(options, settings);
}

function signalName(signal: number): string {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === signal) return name;
  return `SIG${signal}`;
}

import type { LockstepClient } from '@lockstep/client';
import { LockstepError } from '@lockstep/core';
import { terminalService, type outputNotificationSchema } from '@lockstep/pty/protocol';
import { useLockstepClient } from '@lockstep/react';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import { useEffect, useState, type RefObject } from 'react';
import { sharedConnection } from './sharedConnection.js';

export type TerminalPhase =
  /** Waiting for the connection or for the attach answer. */
  | 'attaching'
  | 'live'
  /** The program ended; its output stays readable. */
  | 'exited'
  /** The hub has no terminal with this id (yet: the server spawns it right after the session appears). */
  | 'missing'
  | 'offline'
  | 'error';

export interface TerminalState {
  phase: TerminalPhase;
  /** The run of the terminal shown (a new spawn of the same id is a new run). */
  runId?: string;
  exitCode?: number;
  message?: string;
}

export interface UseTerminalOptions {
  /** Called when the user types into the terminal (to keep the session "active" for focus). */
  onInput?: () => void;
}

const MISSING_RETRY_MS = 500;
/** Smaller than this, the container is not really laid out: the terminal keeps its size. */
const MIN_COLS = 10;
const MIN_ROWS = 2;

type OutputNotification = ReturnType<typeof outputNotificationSchema.parse>;

/** The connection went away (or is not ready): the status subscription attaches again once it is. */
const isOffline = (error: unknown): boolean => error instanceof LockstepError && error.code === 'UNAVAILABLE';

/**
 * An xterm.js terminal in `container`, attached to the hub's terminal `terminalId` over the
 * client's own connection (`terminal.*` of `@lockstep/pty`): output written as bytes, keystrokes
 * sent as `terminal.input`, the size fitted to the container and sent as `terminal.resize`.
 *
 * Exactly-once output across reconnects: the hook counts the bytes it wrote (`next`) and re-attaches
 * with `since: next`, so the hub replays exactly what was missed. A new run of the terminal (a
 * different `runId`) clears the screen and starts from its first byte; a replay the scrollback no
 * longer covers is marked on screen.
 */
export function useTerminal(container: RefObject<HTMLElement | null>, terminalId: string, options: UseTerminalOptions = {}): TerminalState {
  const client = useLockstepClient();
  const [state, setState] = useState<TerminalState>({ phase: 'attaching' });
  const onInputRef = useLatest(options.onInput);

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const view = new TerminalView(client, terminalId, element, setState, () => onInputRef.current?.());
    return () => view.dispose();
    // The view lives as long as the terminal id and the element: options are read through a ref.
  }, [client, terminalId, container, onInputRef]);
  return state;
}

function useLatest<T>(value: T): { current: T } {
  const [ref] = useState(() => ({ current: value }));
  ref.current = value;
  return ref;
}

class TerminalView {
  readonly #term: Terminal;
  readonly #fit = new FitAddon();
  readonly #cleanup: Array<() => void> = [];
  /** Every byte before this offset (of run `#runId`) has been written to the screen. */
  #next = 0;
  #runId: string | undefined;
  /** An attach request is in flight: output waits for its answer (it may belong to it). */
  #attaching = false;
  #early: OutputNotification[] = [];
  #ready = false;
  #disposed = false;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #sentSize: { cols: number; rows: number } | undefined;

  constructor(
    private readonly client: LockstepClient,
    private readonly terminalId: string,
    element: HTMLElement,
    private readonly setState: (state: TerminalState) => void,
    onInput: () => void,
  ) {
    this.#term = new Terminal({
      fontFamily: 'ui-monospace, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace',
      fontSize: 13,
      cursorBlink: true,
      scrollback: 5_000,
      theme: { background: '#0f1419', foreground: '#d6dde6', cursor: '#7fd1b9', selectionBackground: '#33415580' },
    });
    this.#term.loadAddon(this.#fit);
    this.#term.open(element);
    this.#fitToContainer();

    const onData = this.#term.onData((data) => {
      onInput();
      this.client.call(terminalService.input, { terminalId, data }).catch((error: unknown) => this.#onRequestError(error));
    });
    this.#cleanup.push(() => onData.dispose());

    const observer = new ResizeObserver(() => this.#fitToContainer());
    observer.observe(element);
    this.#cleanup.push(() => observer.disconnect());

    // The hub's terminal notifications, validated by the service's schemas; other terminals' are skipped.
    this.#cleanup.push(
      client.on(terminalService.output, (output) => this.#onOutput(output)),
      client.on(terminalService.exit, (exit) => this.#onExit(exit)),
      client.on(terminalService.detached, (detached) => this.#onDetached(detached)),
      client.on(terminalService.resized, (resized) => this.#onResized(resized)),
    );

    // Attach whenever a connection becomes ready: at once if it is, and after every reconnect.
    const status = client.status$.subscribe(({ status }) => {
      const ready = status === 'online' || status === 'resyncing';
      if (ready && !this.#ready) {
        this.#ready = true;
        this.#attach();
      } else if (!ready && this.#ready) {
        this.#ready = false;
        this.#attaching = false;
        this.#early = [];
        if (!this.#disposed) this.setState({ phase: 'offline' });
      }
    });
    this.#cleanup.push(() => status.unsubscribe());
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#retry !== undefined) clearTimeout(this.#retry);
    for (const cleanup of this.#cleanup.splice(0)) cleanup();
    // On a connection shared by the tabs, the attachment is every tab's: it ends with the connection.
    if (this.#ready && !sharedConnection.shared) this.client.call(terminalService.detach, { terminalId: this.terminalId }).catch(() => {});
    this.#term.dispose();
  }

  #attach(): void {
    if (this.#disposed || !this.#ready) return;
    this.#attaching = true;
    this.#early = [];
    this.setState({ phase: 'attaching' });
    const params = this.#runId === undefined ? { terminalId: this.terminalId } : { terminalId: this.terminalId, since: this.#next };
    this.client.call(terminalService.attach, params).then(
      (answer) => {
        if (this.#disposed) return;
        if (this.#runId !== undefined && answer.runId !== this.#runId) {
          // The terminal was spawned again: our offsets mean nothing in the new run.
          this.#startOver();
          return;
        }
        this.#runId = answer.runId;
        if (answer.truncated) this.#term.write('\r\n\x1b[2m[earlier output is no longer retained]\x1b[0m\r\n');
        this.#next = answer.offset;
        this.#attaching = false;
        const early = this.#early;
        this.#early = [];
        for (const output of early) this.#write(output);
        this.setState({ phase: answer.exited ? 'exited' : 'live', runId: answer.runId });
        if (!answer.exited) this.#sendSize(answer);
      },
      (error: unknown) => {
        this.#attaching = false;
        if (this.#disposed) return;
        if (error instanceof LockstepError && error.code === 'UNKNOWN_STREAM') {
          this.setState({ phase: 'missing' });
          this.#retry = setTimeout(() => this.#attach(), MISSING_RETRY_MS);
        } else if (error instanceof LockstepError && (error.data as { reason?: string } | undefined)?.reason === 'sinceAhead') {
          this.#startOver();
        } else if (!isOffline(error)) {
          this.setState({ phase: 'error', message: error instanceof Error ? error.message : String(error) });
        }
        // UNAVAILABLE: the connection went away; the status subscription attaches again.
      },
    );
  }

  #startOver(): void {
    this.#runId = undefined;
    this.#next = 0;
    this.#term.reset();
    this.#attach();
  }

  #onOutput(output: OutputNotification): void {
    if (this.#disposed || output.terminalId !== this.terminalId) return;
    if (this.#attaching) this.#early.push(output);
    else this.#write(output);
  }

  #onExit({ terminalId, exitCode, signal }: { terminalId: string; exitCode: number; signal?: string | undefined }): void {
    if (this.#disposed || terminalId !== this.terminalId) return;
    this.#term.write(`\r\n\x1b[2m[process exited${signal ? ` on ${signal}` : ` with code ${exitCode}`}]\x1b[0m\r\n`);
    this.setState(this.#runId === undefined ? { phase: 'exited', exitCode } : { phase: 'exited', exitCode, runId: this.#runId });
  }

  /** The hub took this viewer's access back (a grant revoked): no more output will come. */
  #onDetached({ terminalId, error }: { terminalId: string; error: { message: string } }): void {
    if (this.#disposed || terminalId !== this.terminalId) return;
    this.#term.write(`\r\n\x1b[2m[detached: ${error.message}]\x1b[0m\r\n`);
    this.setState({ phase: 'error', message: error.message });
  }

  /** Another viewer resized the program: draw at its size (and do not answer with ours). */
  #onResized({ terminalId, cols, rows }: { terminalId: string; cols: number; rows: number }): void {
    if (this.#disposed || terminalId !== this.terminalId) return;
    this.#sentSize = { cols, rows };
    if (this.#term.cols !== cols || this.#term.rows !== rows) this.#term.resize(cols, rows);
  }

  /** Writes the part of `output` not on screen yet; bytes before `#next` were written already. */
  #write(output: OutputNotification): void {
    const bytes = decodeBase64(output.data);
    if (output.truncated && output.offset > this.#next) {
      this.#term.write('\r\n\x1b[2m[some output was skipped]\x1b[0m\r\n');
      this.#next = output.offset;
    }
    const end = output.offset + bytes.length;
    if (end <= this.#next) return;
    this.#term.write(output.offset < this.#next ? bytes.subarray(this.#next - output.offset) : bytes);
    this.#next = end;
  }

  #fitToContainer(): void {
    if (this.#disposed) return;
    // Not laid out, or squeezed for a moment (a relayout reports 0 × 254 before the real size):
    // fitting to that would reflow the screen to 2 columns, push it into the scrollback, and
    // resize the program and every other viewer with it.
    const proposed = this.#fit.proposeDimensions();
    if (!proposed || proposed.cols < MIN_COLS || proposed.rows < MIN_ROWS) return;
    this.#fit.fit();
    if (this.#runId !== undefined && this.#ready && !this.#attaching) this.#sendSize(this.#sentSize);
  }

  #sendSize(current: { cols: number; rows: number } | undefined): void {
    const { cols, rows } = this.#term;
    if (current && current.cols === cols && current.rows === rows) {
      this.#sentSize = current;
      return;
    }
    this.#sentSize = { cols, rows };
    this.client.call(terminalService.resize, { terminalId: this.terminalId, cols, rows }).catch((error: unknown) => this.#onRequestError(error));
  }

  #onRequestError(error: unknown): void {
    // Input to an exited program, or a call between connections: the state already says so.
    if (isOffline(error)) return;
    if (error instanceof LockstepError && error.code === 'COMMAND_REJECTED') return;
    this.setState({ phase: 'error', message: error instanceof Error ? error.message : String(error) });
  }
}

function decodeBase64(data: string): Uint8Array {
  const binary = atob(data);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Helpers of the package's own tests (not built, not published). */
import { setTimeout as sleep } from 'node:timers/promises';
import { isAlive } from '../processTree.js';
import type { Terminal } from '../terminal.js';

/** Waits until `condition` holds, checking every few milliseconds (the test's timeout bounds it). */
export async function waitFor(condition: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; ; i++) {
    if (condition()) return;
    await sleep(i < 20 ? 1 : 10);
    if (i > 60_000) throw new Error(`gave up waiting for ${what}`);
  }
}

/** The terminal's output so far (everything still in its scrollback), as text. */
export function text(terminal: Terminal): string {
  return terminal.read(terminal.start, terminal.written).toString('utf8');
}

/** Waits until the terminal's output matches. */
export async function waitForOutput(terminal: Terminal, pattern: RegExp | string): Promise<string> {
  const matches = () => (typeof pattern === 'string' ? text(terminal).includes(pattern) : pattern.test(text(terminal)));
  await waitFor(matches, `output ${pattern}`);
  return text(terminal);
}

/** Waits until every pid is gone (or a zombie: dead, waiting for a parent that is not ours to reap it). */
export async function waitGone(pids: readonly number[]): Promise<void> {
  await waitFor(() => pids.every((pid) => !isAlive(pid)), `pids ${pids.join(', ')} to end`);
}

/** `seq 1 n` as a terminal shows it: each line ends with CR LF (the pty's `onlcr`). */
export function seqOutput(n: number, from = 1): string {
  const lines: string[] = [];
  for (let i = from; i <= n; i++) lines.push(`${i}\r\n`);
  return lines.join('');
}

/** Terminals a test spawned: closed (and their pids checked gone) in `afterEach`. */
export class Spawned {
  readonly #terminals: Terminal[] = [];

  add<T extends Terminal>(terminal: T): T {
    this.#terminals.push(terminal);
    return terminal;
  }

  async closeAll(): Promise<void> {
    const terminals = this.#terminals.splice(0);
    await Promise.all(terminals.map((terminal) => terminal.close()));
    for (const terminal of terminals) terminal.dispose();
    await waitGone(terminals.map((terminal) => terminal.pid));
  }
}

/** What `pnpm sidecar` prints: who says what, and the checks that decide its exit code. */
import { LockstepError } from '@lockstep/core';

export function say(who: string, what: string): void {
  console.log(`  ${who.padEnd(12)} ${what}`);
}

/** A handful of characters of an id, for reading. */
export const short = (id: string | undefined) => (id ?? '').slice(0, 8);

/** Milliseconds, readable at any size. */
export function ms(value: number): string {
  return value < 1 ? `${(value * 1000).toFixed(0)} µs` : value < 100 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

/** `CODE (reason)` of a LockstepError, or what else was thrown. */
export function describeError(error: unknown): string {
  if (error instanceof LockstepError) {
    const reason = (error.data as { reason?: unknown } | undefined)?.reason;
    return typeof reason === 'string' ? `${error.code} (${reason})` : error.code;
  }
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** True when `error` is a LockstepError with this code (and this `data.reason`, if given). */
export function isError(error: unknown, code: string, reason?: string): boolean {
  if (!(error instanceof LockstepError) || error.code !== code) return false;
  return reason === undefined || (error.data as { reason?: unknown } | undefined)?.reason === reason;
}

/** The checks of a run: each printed as it is made; the run passes when all of them did. */
export class Checks {
  readonly #results: Array<{ ok: boolean; what: string }> = [];

  check(ok: boolean, what: string): boolean {
    this.#results.push({ ok, what });
    console.log(`  ${ok ? '✓' : '✗ FAILED:'} ${what}`);
    return ok;
  }

  get passed(): boolean {
    return this.#results.length > 0 && this.#results.every((result) => result.ok);
  }

  summary(): string {
    const failed = this.#results.filter((result) => !result.ok);
    return failed.length === 0
      ? `All ${this.#results.length} checks passed.`
      : `${failed.length} of ${this.#results.length} checks FAILED:\n${failed.map((result) => `  - ${result.what}`).join('\n')}`;
  }
}

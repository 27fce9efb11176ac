import * as vitest from 'vitest';

type Body = () => void | Promise<void>;

/**
 * The test functions a testkit suite declares its cases with. Vitest's are the default; pass your
 * runner's to run a suite under it — for `node:test`:
 *
 * ```ts
 * // describe and it from node:test; expect from jest's `expect` package, or vitest's (the default),
 * // which works outside vitest too
 * describeTransportConformance('my transport', factory, { runner: { describe, it, expect } });
 * ```
 *
 * `describe` and `it` are called as `describe(name, body)` and `it(name, body)` — with a third
 * argument first, `describe(name, { timeout }, body)`, only when the suite is given `timeoutMs`
 * (vitest's and node:test's both take it). `it.each`, when the runner has it, declares the cases that
 * run once per direction or variant; otherwise the suite declares one `it` per case itself, with
 * `$name` in the title replaced by each case's value. Each case cleans up what it opened inside its
 * own body, so the runner needs no hooks. `expect` is vitest's unless given (jest's `expect` package
 * fits); the suites use `toBe`, `toEqual`, `toMatchObject`, `toHaveLength`, `toBeInstanceOf` and
 * `rejects`, with a message as the second argument where they have one.
 */
export interface TestRunnerAdapter {
  describe(name: string, ...rest: unknown[]): unknown;
  it: (name: string, body: Body) => unknown;
  expect?: (actual: unknown, message?: string) => unknown;
}

/** Vitest's functions: what the suites use when no runner is given. */
export const vitestRunner: TestRunnerAdapter = { describe: vitest.describe, it: vitest.it, expect: vitest.expect };

/** Declares one case; `each` declares one case per item, `$key` in the name taken from the item. */
export interface CaseDeclarer {
  (name: string, body: Body): void;
  each<T extends object>(cases: readonly T[]): (name: string, body: (item: T) => void | Promise<void>) => void;
}

/** What a suite uses: the adapter's functions, with cleanup after each case and `each` everywhere. */
export interface SuiteRunner {
  /** `describe(name, body)`, or `describe(name, { timeout }, body)` (a timeout in ms, or none). */
  describe: (name: string, optionsOrBody: { timeout?: number } | (() => void), body?: () => void) => void;
  it: CaseDeclarer;
  expect: typeof vitest.expect;
  /** Runs `cleanup` when the current case finishes, pass or fail. */
  onFinished: (cleanup: () => unknown) => void;
  /** `it` when `applies`, otherwise a declarer that declares nothing (see `caseIf`). */
  caseIf: (applies: boolean) => CaseDeclarer;
}

const undeclared: CaseDeclarer = Object.assign(() => {}, { each: () => () => {} });

/** The suite's view of `adapter` (vitest's when not given). */
export function suiteRunner(adapter: TestRunnerAdapter | undefined): SuiteRunner {
  const expect = (adapter?.expect ?? vitest.expect) as typeof vitest.expect;
  if (adapter === undefined || adapter === vitestRunner) {
    // Vitest's own, exactly as the suites have always declared their cases.
    const it = vitest.it as unknown as CaseDeclarer;
    return {
      describe: (name, optionsOrBody, body) =>
        typeof optionsOrBody === 'function' ? vitest.describe(name, optionsOrBody) : vitest.describe(name, optionsOrBody, body),
      it,
      expect,
      onFinished: (cleanup) => vitest.onTestFinished(async () => void (await cleanup())),
      caseIf: (applies) => (applies ? it : undeclared),
    };
  }
  let cleanups: Array<() => unknown> = [];
  const run = async (body: () => void | Promise<void>) => {
    try {
      await body();
    } finally {
      const pending = cleanups.reverse();
      cleanups = [];
      for (const cleanup of pending) await cleanup();
    }
  };
  const declare = (name: string, body: Body) => void adapter.it(name, () => run(body));
  const runnerEach = (adapter.it as { each?: unknown }).each;
  const it: CaseDeclarer = Object.assign(declare, {
    each:
      <T extends object>(cases: readonly T[]) =>
      (name: string, body: (item: T) => void | Promise<void>) => {
        if (typeof runnerEach === 'function') {
          (runnerEach as (cases: readonly T[]) => (name: string, body: (item: T) => unknown) => void).call(adapter.it, cases)(name, (item) =>
            run(() => body(item)),
          );
          return;
        }
        for (const item of cases)
          declare(
            name.replace(/\$(\w+)/g, (whole, key: string) => (key in item ? String((item as Record<string, unknown>)[key]) : whole)),
            () => body(item),
          );
      },
  });
  return {
    describe: (name, optionsOrBody, body) => {
      if (typeof optionsOrBody === 'function') adapter.describe(name, optionsOrBody);
      else if (optionsOrBody.timeout === undefined) adapter.describe(name, body);
      else adapter.describe(name, { timeout: optionsOrBody.timeout }, body);
    },
    it,
    expect,
    onFinished: (cleanup) => void cleanups.push(cleanup),
    caseIf: (applies) => (applies ? it : undeclared),
  };
}

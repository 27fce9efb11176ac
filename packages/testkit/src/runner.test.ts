import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createMemoryLink } from '@lockstep/core';
import { MemoryEventStore } from '@lockstep/server';
import { describe, expect, it } from 'vitest';
import { describeEventStoreConformance } from './eventStoreConformance.js';
import type { TestRunnerAdapter } from './runner.js';
import { describeTransportConformance } from './transportConformance.js';

/**
 * A runner shaped like node:test's: `describe(name, [options,] body)` runs the body at once, `it`
 * has no `each` and hands its body a context; nothing runs until `run`. Cases run one after another.
 */
function nodeTestShim() {
  const cases: Array<{ name: string; body: (context: unknown) => unknown }> = [];
  const path: string[] = [];
  const runner: TestRunnerAdapter = {
    describe(name: string, ...rest: unknown[]) {
      const body = rest.at(-1) as () => void;
      path.push(name);
      try {
        body();
      } finally {
        path.pop();
      }
    },
    it(name, body) {
      cases.push({ name: [...path, name].join(' > '), body });
    },
  };
  const run = async () => {
    const failed: string[] = [];
    for (const { name, body } of cases) {
      try {
        await body({ name });
      } catch (error) {
        failed.push(`${name}: ${String(error)}`);
      }
    }
    return failed;
  };
  return { runner, cases, run };
}

describe('testkit suites under another runner', () => {
  it('declares every case of the transport suite through a node:test-shaped runner, with `$label` filled in, and they pass', async () => {
    const shim = nodeTestShim();
    const disposed: number[] = [];
    describeTransportConformance(
      'memory',
      () => {
        const link = createMemoryLink();
        return { client: link.client, server: link.server, dispose: () => void disposed.push(1) };
      },
      { runner: shim.runner },
    );
    const names = shim.cases.map((c) => c.name);
    expect(names).toContain('memory > frames > carries text frames unchanged, as strings (client to server)');
    expect(names).toContain('memory > frames > carries text frames unchanged, as strings (server to client)');
    expect(names.filter((name) => name.includes('$'))).toEqual([]);
    expect(await shim.run()).toEqual([]);
    // Each case's pair was disposed when the case ended, without runner hooks.
    expect(disposed.length).toBeGreaterThanOrEqual(shim.cases.length - 2);
  });

  it('reports a failing case as a failure of that case, and still cleans up after it', async () => {
    const shim = nodeTestShim();
    let opened = 0;
    let closed = 0;
    describeEventStoreConformance(
      'broken store',
      () => {
        const store = new MemoryEventStore();
        opened++;
        // A store that reads nothing back breaks the contract.
        store.read = async () => [];
        const close = store.close.bind(store);
        store.close = async () => {
          closed++;
          await close();
        };
        return store;
      },
      { runner: shim.runner },
    );
    const failed = await shim.run();
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThan(shim.cases.length);
    expect(closed).toBe(opened);
  });

  it('runs the transport and event-store suites under node:test itself', () => {
    const here = dirname(fileURLToPath(import.meta.url));
    const tsx = createRequire(import.meta.url).resolve('tsx');
    const child = spawnSync(
      process.execPath,
      ['--conditions=lockstep-source', '--import', tsx, '--test', '--test-reporter=tap', join(here, '../test/nodeTestRun.ts')],
      {
        encoding: 'utf8',
        timeout: 110_000,
      },
    );
    const summary = (name: string) =>
      Number(
        /^# (\w+) (\d+)$/m.exec(
          child.stdout
            .split('\n')
            .filter((line) => line.startsWith(`# ${name} `))
            .join('\n'),
        )?.[2] ?? -1,
      );
    expect(child.status, child.stdout.slice(-3_000) + child.stderr.slice(-3_000)).toBe(0);
    expect(summary('fail')).toBe(0);
    expect(summary('pass')).toBeGreaterThan(50);
  });
});

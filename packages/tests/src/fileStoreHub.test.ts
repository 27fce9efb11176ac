import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtInDomains, type Event } from '@lockstep/core';
import { FileEventStore, Hub } from '@lockstep/server';
import { runChaos } from '@lockstep/testkit';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { builtInScenario } from './builtInScenario.js';

/** The file store under a real Hub: dedup across restarts, bounded disk and replay, chaos. */
const root = mkdtempSync(join(tmpdir(), 'lockstep-file-hub-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

/** Bytes of every file under `path` (a file a rewrite removes meanwhile counts as nothing). */
function directoryBytes(path: string): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    if (entry.isDirectory()) total += directoryBytes(full);
    else total += statSync(full, { throwIfNoEntry: false })?.size ?? 0;
  }
  return total;
}

const quiet = { onError: () => {} };

describe('file event store under a hub', () => {
  it('deduplicates a command re-sent to a new hub after a restart, also one without events', async () => {
    const directory = freshDir();
    let store = await FileEventStore.open(directory);
    let hub = new Hub({ domains: builtInDomains, store, ...quiet });
    const create = { id: 'cmd-create-1', stream: 'tasks/proj_1', type: 'task.create', payload: { id: 'task_1', title: 'Ship it' } };
    const blur = { id: 'cmd-blur-1', stream: 'focus/proj_1', type: 'focus.blur', payload: { sessionId: 'nobody' } };
    expect(await hub.execute(create)).toEqual({ id: 'cmd-create-1', stream: 'tasks/proj_1', version: 1 });
    const first = await hub.execute(blur);
    await hub.close();
    await store.close();

    store = await FileEventStore.open(directory);
    onTestFinished(() => store.close());
    hub = new Hub({ domains: builtInDomains, store, ...quiet });
    onTestFinished(() => hub.close());
    expect(await hub.execute(create)).toEqual({ id: 'cmd-create-1', stream: 'tasks/proj_1', version: 1, duplicate: true });
    expect(await hub.execute(blur)).toEqual({ ...first, duplicate: true });
    // The same id for another command is a conflict, not a duplicate.
    await expect(hub.execute({ ...create, payload: { id: 'task_2', title: 'Other' } })).rejects.toMatchObject({ code: 'COMMAND_ID_CONFLICT' });
    const { state, version } = await hub.read('tasks/proj_1');
    expect(version).toBe(1);
    expect(Object.keys((state as { tasks: Record<string, unknown> }).tasks)).toEqual(['task_1']);
  });

  it('keeps the directory and the replay at open bounded while a stream grows, with snapshots and compaction', async () => {
    const directory = freshDir();
    const options = { rewriteBytes: 64 * 1024, maxCommandRecords: 1_000 };
    let store = await FileEventStore.open(directory, options);
    let hub = new Hub({ domains: builtInDomains, store, snapshotEvery: 20, retainEvents: 50, ...quiet });
    const sizes: number[] = [];
    const total = 3_000;
    for (let i = 0; i < total; i++) {
      const workspaceId = `ws-${i % 7}`;
      // Commands in flight together: the hub batches them into one append (group commit).
      await Promise.all([
        hub.execute({ id: `d-${i}`, stream: 'orchestration/default', type: 'workspace.setDesired', payload: { workspaceId, desired: i % 5 } }),
        hub.execute({ id: `r-${i}`, stream: 'orchestration/default', type: 'workspace.setRunning', payload: { workspaceId, running: i % 4 } }),
      ]);
      if (i % 10 === 9) {
        // Measured between rewrites: while one runs, its new base sits beside the old files.
        await store.settled();
        sizes.push(directoryBytes(directory));
      }
    }
    const before = await hub.read('orchestration/default');
    // A command that changes nothing records no event.
    expect(before.version).toBeGreaterThan(total);
    // Live: ~50 events and 1,000 command records (~70 KB), whatever the number of events written
    // (~1.1 MB of them). Between rewrites the directory holds the base and at most `rewriteBytes`
    // (or a base's worth) of segments: it saws, but does not grow — the last third of the run
    // peaks no higher than the middle third.
    const third = Math.floor(sizes.length / 3);
    const middle = Math.max(...sizes.slice(third, 2 * third));
    const last = Math.max(...sizes.slice(2 * third));
    expect(last).toBeLessThan(200 * 1024);
    expect(last).toBeLessThanOrEqual(middle + 8 * 1024);
    await hub.close();
    await store.close();

    store = await FileEventStore.open(directory, options);
    onTestFinished(() => store.close());
    // The open replays what is live, never the 6,000 compacted events.
    expect(store.recovery.records).toBeLessThan(600);
    const info = await store.info('orchestration/default');
    expect(info.head).toBe(before.version);
    expect(info.oldestRetained).toBeGreaterThan(before.version - 100);
    hub = new Hub({ domains: builtInDomains, store, snapshotEvery: 20, retainEvents: 50, ...quiet });
    onTestFinished(() => hub.close());
    expect(await hub.read('orchestration/default')).toEqual(before);
    // Dedup still knows the latest commands.
    expect(
      await hub.execute({
        id: `d-${total - 1}`,
        stream: 'orchestration/default',
        type: 'workspace.setDesired',
        payload: { workspaceId: `ws-${(total - 1) % 7}`, desired: (total - 1) % 5 },
      }),
    ).toMatchObject({ duplicate: true });
  });

  it('serves reads across the base and the segments with the events as written', async () => {
    const directory = freshDir();
    const store = await FileEventStore.open(directory, { rewriteBytes: 8 * 1024 });
    onTestFinished(() => store.close());
    const hub = new Hub({ domains: builtInDomains, store, ...quiet });
    onTestFinished(() => hub.close());
    const seen: Event[] = [];
    for (let i = 0; i < 300; i++) {
      await hub.execute({ id: `t-${i}`, stream: 'tasks/p', type: 'task.create', payload: { id: `task_${i}`, title: `Täsk ${i} "quoted" \u2028 ✓` } });
    }
    seen.push(...(await store.read('tasks/p', 1, 1_000)));
    expect(seen.map((event) => event.version)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    expect(seen[299]).toMatchObject({ type: 'task.created', commandId: 't-299', data: { id: 'task_299', title: 'Täsk 299 "quoted" \u2028 ✓' } });
    expect(readdirSync(join(directory, 'log')).some((name) => name.endsWith('.base'))).toBe(true);
  });
});

describe('chaos on a file event store', () => {
  // The chaos harness restarts hubs on the same store instance; the store is real files, fsynced.
  const seeds = process.env.LOCKSTEP_SEED ? [Number(process.env.LOCKSTEP_SEED)] : [0xf11e, 0xf11f, 0xf120];
  it.each(seeds)('seed %i: 8 clients, 1,500 commands converge; every acknowledged command applied once', async (seed) => {
    const store = await FileEventStore.open(freshDir(), { rewriteBytes: 32 * 1024 });
    onTestFinished(() => store.close());
    const report = await runChaos(builtInScenario, {
      seed,
      store,
      clients: 8,
      commands: 1_500,
      restartChance: 0.01,
      hub: { snapshotEvery: 41, retainEvents: Number.MAX_SAFE_INTEGER, leaseGraceMs: 150 },
    });
    expect(report.acknowledged + report.rejected).toBe(1_500);
    expect(report.acknowledged).toBeGreaterThan(300);
    expect(report.restarts).toBeGreaterThan(0);
    // The log on disk says the same after a reopen.
    const reopened = await FileEventStore.open(await closeAndGetDirectory(store));
    onTestFinished(() => reopened.close());
    for (const [stream, version] of Object.entries(report.versions)) expect((await reopened.info(stream)).head).toBe(version);
  });
});

describe('several hubs on one file event store', () => {
  // As several hubs in one process would share it: appends race (the loser waits for the winner to
  // be durable, catches up and decides again) and `watch` tells each hub what the others wrote.
  it('seed 61800: 3 hubs, 8 clients, 1,500 commands converge', async () => {
    const store = await FileEventStore.open(freshDir(), { rewriteBytes: 32 * 1024 });
    onTestFinished(() => store.close());
    const report = await runChaos(builtInScenario, {
      seed: 61_800,
      store,
      hubs: 3,
      clients: 8,
      commands: 1_500,
      restartChance: 0.005,
      hub: { snapshotEvery: 53, retainEvents: Number.MAX_SAFE_INTEGER, leaseGraceMs: 150 },
    });
    expect(report.acknowledged + report.rejected).toBe(1_500);
    expect(report.acknowledged).toBeGreaterThan(300);
  });
});

async function closeAndGetDirectory(store: FileEventStore): Promise<string> {
  await store.close();
  return store.directory;
}

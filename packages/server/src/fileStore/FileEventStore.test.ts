import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Commit, StoredEvent } from '../eventStore.js';
import { FileEventStore, type FileEventStoreOptions } from './FileEventStore.js';
import { StoreLockedError } from './StoreLockedError.js';
import { streamFileName } from './streamFileName.js';

const root = mkdtempSync(join(tmpdir(), 'lockstep-file-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);

async function openStore(directory = freshDir(), options: FileEventStoreOptions = {}): Promise<FileEventStore> {
  const store = await FileEventStore.open(directory, options);
  onTestFinished(() => store.close());
  return store;
}

function commit(commandId: string, from: number, count = 1, data: unknown = { from: commandId }): Commit {
  const events: StoredEvent[] = Array.from({ length: count }, (_, i) => ({
    version: from + i,
    type: 'counter.added',
    data,
    time: 1_000 + from + i,
    commandId,
  }));
  return { commandId, fingerprint: `fp:${commandId}`, events };
}

/** Appends `count` one-event commands to a stream, one call each. */
async function fill(store: FileEventStore, stream: string, count: number, prefix = stream): Promise<void> {
  let head = (await store.info(stream)).head;
  for (let i = 0; i < count; i++, head++) await store.append(stream, head, [commit(`${prefix}#${head + 1}`, head + 1)]);
}

describe('FileEventStore', () => {
  it('lays out a new directory: store.json, a log segment, snapshots, and a lock while open', async () => {
    const directory = freshDir();
    const store = await FileEventStore.open(directory);
    expect(store.durability).toBe('fsync');
    expect(readdirSync(directory).sort()).toEqual(['lock', 'log', 'snapshots', 'store.json']);
    expect(readdirSync(join(directory, 'log'))).toEqual(['0000000000000001.log']);
    const meta = JSON.parse(readFileSync(join(directory, 'store.json'), 'utf8'));
    expect(meta).toMatchObject({ format: 1, epoch: store.epoch });
    expect(JSON.parse(readFileSync(join(directory, 'lock'), 'utf8'))).toMatchObject({ pid: process.pid, host: hostname() });
    await store.close();
    expect(existsSync(join(directory, 'lock'))).toBe(false);
    await expect(store.info('tasks/a')).rejects.toThrow(/closed/);
    await expect(store.append('tasks/a', 0, [commit('late', 1)])).rejects.toThrow(/closed/);
  });

  it('refuses a directory that holds something else', async () => {
    const directory = freshDir();
    mkdirSync(directory);
    writeFileSync(join(directory, 'notes.txt'), 'mine');
    await expect(FileEventStore.open(directory)).rejects.toThrow(/not empty and holds no Lockstep store/);
    expect(existsSync(join(directory, 'lock'))).toBe(false);
  });

  describe('group commit', () => {
    it('writes the appends of one tick with one write', async () => {
      const store = await openStore();
      const before = store.writeStats;
      await Promise.all(Array.from({ length: 64 }, (_, i) => store.append(`tasks/p${i}`, 0, [commit(`c${i}`, 1, 2)])));
      expect(store.writeStats).toEqual({ writes: before.writes + 1, records: before.records + 64 });
      for (let i = 0; i < 64; i += 21) expect(await store.info(`tasks/p${i}`)).toEqual({ head: 2, oldestRetained: 1 });
    });

    it('queues appends arriving while a write is in flight and writes them together next', async () => {
      const store = await openStore();
      const before = store.writeStats;
      const first = store.append('tasks/a', 0, [commit('first', 1)]);
      // The first write starts at the next microtask; these arrive after it started.
      await Promise.resolve();
      await Promise.resolve();
      const rest = Array.from({ length: 10 }, (_, i) => store.append(`tasks/b${i}`, 0, [commit(`later${i}`, 1)]));
      await Promise.all([first, ...rest]);
      expect(store.writeStats).toEqual({ writes: before.writes + 2, records: before.records + 11 });
    });

    it('answers an append only after its record is written, with durability os as well', async () => {
      const store = await openStore(freshDir(), { durability: 'os' });
      expect(store.durability).toBe('os');
      const seen: Array<[string, number]> = [];
      const stop = store.watch((stream, head) => seen.push([stream, head]));
      await store.append('tasks/a', 0, [commit('c1', 1, 3)]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual([['tasks/a', 3]]);
      stop();
      await store.append('tasks/a', 3, [commit('c2', 4)]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(seen).toEqual([['tasks/a', 3]]);
    });
  });

  describe('one owner per directory', () => {
    it('refuses a second open of a directory in use, here or in another process', async () => {
      const store = await openStore();
      const second = FileEventStore.open(store.directory);
      await expect(second).rejects.toBeInstanceOf(StoreLockedError);
      await expect(FileEventStore.open(store.directory)).rejects.toThrow(/locked by this process/);
      // A live process of someone else: its lock holds.
      const directory = freshDir();
      mkdirSync(directory);
      const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
      onTestFinished(() => void sleeper.kill('SIGKILL'));
      writeFileSync(join(directory, 'lock'), JSON.stringify({ pid: sleeper.pid, host: hostname(), since: 'then', nonce: 'n' }));
      const refused = FileEventStore.open(directory);
      await expect(refused).rejects.toBeInstanceOf(StoreLockedError);
      await expect(FileEventStore.open(directory)).rejects.toThrow(new RegExp(`locked by process ${sleeper.pid} on ${hostname()}.*delete .*lock`));
      // Another host's lock is never judged from here.
      writeFileSync(join(directory, 'lock'), JSON.stringify({ pid: 999_999_999, host: 'elsewhere', since: 'then', nonce: 'n' }));
      await expect(FileEventStore.open(directory)).rejects.toThrow(/on elsewhere/);
    });

    it('takes over the lock of a process that is gone (killed without closing)', async () => {
      const store = await openStore();
      await store.append('tasks/a', 0, [commit('c1', 1)]);
      const { directory } = store;
      await store.close();
      const dead = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
      await new Promise((resolve) => dead.once('exit', resolve));
      writeFileSync(join(directory, 'lock'), JSON.stringify({ pid: dead.pid, host: hostname(), since: 'then', nonce: 'old' }));
      const reopened = await openStore(directory);
      expect(await reopened.info('tasks/a')).toEqual({ head: 1, oldestRetained: 1 });
      expect(JSON.parse(readFileSync(join(directory, 'lock'), 'utf8')).pid).toBe(process.pid);
    });
  });

  describe('file names from stream names', () => {
    it('encodes every byte that could make a path, and keeps distinct streams apart', () => {
      expect(streamFileName('tasks/proj_1')).toBe('tasks%2Fproj_1');
      expect(streamFileName('tasks/../../x')).toBe('tasks%2F%2E%2E%2F%2E%2E%2Fx');
      expect(streamFileName('..')).toBe('%2E%2E');
      expect(streamFileName('a\\b\0c')).toBe('a%5Cb%00c');
      expect(streamFileName('Tasks/A')).not.toBe(streamFileName('tasks/a'));
      expect(streamFileName('')).toMatch(/^~[0-9a-f]{16}$/);
      const long = `tasks/${'x'.repeat(200)}`;
      expect(streamFileName(long).length).toBeLessThanOrEqual(96);
      expect(streamFileName(`${long}1`)).not.toBe(streamFileName(`${long}2`));
      for (const name of ['tasks/../../x', '../x', 'a/b/c', 'C:\\x', 'tasks/é', long]) expect(streamFileName(name)).toMatch(/^(?:[a-z0-9_~-]|%[0-9A-F]{2})+$/);
    });

    it('keeps snapshots of hostile stream names inside the snapshots directory', async () => {
      const store = await openStore();
      const names = ['tasks/../../escaped', '../../escaped', 'focus/proj_1', 'Focus/Proj_1', '/abs', `tasks/${'y'.repeat(300)}`];
      for (const [i, name] of names.entries()) await store.saveSnapshot({ stream: name, version: 0, state: { i } });
      expect(readdirSync(store.directory).sort()).toEqual(['lock', 'log', 'snapshots', 'store.json']);
      expect(readdirSync(join(store.directory, 'snapshots'))).toHaveLength(names.length);
      expect(existsSync(join(root, 'escaped'))).toBe(false);
      const reopened = await openStore(await closed(store));
      for (const [i, name] of names.entries()) expect(await reopened.loadSnapshot(name)).toEqual({ stream: name, version: 0, state: { i } });
      expect([...(await reopened.streams())].sort()).toEqual([...names].sort());
    });
  });

  describe('compaction of the files', () => {
    it('rewrites the log into a base holding only what is retained, while appends go on', async () => {
      const store = await openStore(freshDir(), { rewriteBytes: Number.MAX_SAFE_INTEGER });
      await fill(store, 'tasks/a', 300);
      await fill(store, 'focus/a', 10);
      await store.saveSnapshot({ stream: 'tasks/a', version: 280, state: { at: 280 } });
      await store.compact('tasks/a', 251);
      const rewrite = store.rewrite();
      // Appends during the rewrite land in the new segment and survive the switch.
      const during = fill(store, 'tasks/a', 20);
      await Promise.all([rewrite, during]);
      const files = readdirSync(join(store.directory, 'log')).sort();
      expect(files).toEqual(['0000000000000001.base', '0000000000000002.log']);
      expect(await store.info('tasks/a')).toEqual({ head: 320, oldestRetained: 251 });
      expect((await store.read('tasks/a', 1, 1_000)).map((event) => event.version)).toEqual(range(251, 320));
      expect((await store.read('focus/a', 1, 1_000)).map((event) => event.version)).toEqual(range(1, 10));
      expect((await store.findCommands(['tasks/a#1', 'tasks/a#320'])).size).toBe(2);
      const reopened = await openStore(await closed(store));
      expect(await reopened.info('tasks/a')).toEqual({ head: 320, oldestRetained: 251 });
      expect((await reopened.read('tasks/a', 240, 1_000)).map((event) => event.version)).toEqual(range(251, 320));
      expect((await reopened.read('tasks/a', 300, 5)).map((event) => event.commandId)).toEqual(range(300, 304).map((v) => `tasks/a#${v}`));
      // Dedup records of compacted events are kept (within maxCommandRecords).
      expect((await reopened.findCommands(['tasks/a#1']))?.get('tasks/a#1')).toEqual({
        commandId: 'tasks/a#1',
        stream: 'tasks/a',
        fingerprint: 'fp:tasks/a#1',
        version: 1,
      });
      await expect(reopened.append('tasks/b', 0, [commit('tasks/a#1', 1)])).rejects.toMatchObject({ name: 'StoreConflictError', commandId: 'tasks/a#1' });
    });

    it('keeps disk use and replay bounded on a long-lived stream with snapshots and compaction', async () => {
      const options = { rewriteBytes: 32 * 1024, maxCommandRecords: 500, durability: 'os' } as const;
      const store = await openStore(freshDir(), options);
      const sizes: number[] = [];
      let head = 0;
      for (let round = 0; round < 40; round++) {
        await fill(store, 'tasks/long', 100);
        head += 100;
        await store.saveSnapshot({ stream: 'tasks/long', version: head, state: { head } });
        await store.compact('tasks/long', head - 200 + 1);
        sizes.push(store.logBytes);
      }
      // 4,000 events written; at most ~200 events and 500 command records are live.
      expect(Math.max(...sizes.slice(10))).toBeLessThan(160 * 1024);
      const reopened = await openStore(await closed(store), options);
      expect(await reopened.info('tasks/long')).toEqual({ head: 4_000, oldestRetained: 3_801 });
      // Replay reads the base and the segments since: far fewer records than the 4,000 appends.
      expect(reopened.recovery.records).toBeLessThan(1_000);
      expect(reopened.recovery.bytes).toBeLessThan(160 * 1024);
      expect((await reopened.read('tasks/long', 1, 10)).map((event) => event.version)).toEqual(range(3_801, 3_810));
      expect((await reopened.findCommands(['tasks/long#3999', 'tasks/long#100'])).size).toBe(1);
    });
  });
});

async function closed(store: FileEventStore): Promise<string> {
  await store.close();
  return store.directory;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

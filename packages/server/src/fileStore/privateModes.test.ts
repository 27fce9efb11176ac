import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Commit } from '../eventStore.js';
import { FileEventStore } from './FileEventStore.js';

const root = mkdtempSync(join(tmpdir(), 'lockstep-private-modes-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);
const segment = (directory: string, seq: number) => join(directory, 'log', `${String(seq).padStart(16, '0')}.log`);

/** Runs the rest of the test with this umask (0: nothing masked, so only the modes passed count). */
function useUmask(mask: number): void {
  const previous = process.umask(mask);
  onTestFinished(() => {
    process.umask(previous);
  });
}

function commit(commandId: string, from: number, count = 1): Commit {
  const events = Array.from({ length: count }, (_, i) => ({
    version: from + i,
    type: 'task.created',
    data: { id: `${commandId}-${i}` },
    time: 1_000 + from + i,
    commandId,
  }));
  return { commandId, fingerprint: `fp:${commandId}`, events };
}

/** Every entry below `directory` (itself included, as '.'), with its kind and permission bits. */
function modes(directory: string): Array<{ path: string; kind: 'dir' | 'file'; mode: string }> {
  const out: Array<{ path: string; kind: 'dir' | 'file'; mode: string }> = [];
  const walk = (path: string) => {
    const info = lstatSync(path);
    const kind = info.isDirectory() ? 'dir' : 'file';
    out.push({ path: relative(directory, path) || '.', kind, mode: (info.mode & 0o777).toString(8) });
    if (kind === 'dir') for (const name of readdirSync(path).sort()) walk(join(path, name));
  };
  walk(directory);
  return out;
}

function expectPrivate(directory: string): void {
  const found = modes(directory);
  expect(found.filter((entry) => entry.mode !== (entry.kind === 'dir' ? '700' : '600'))).toEqual([]);
}

describe('files are private', () => {
  it('creates every directory 0700 and every file 0600, whatever the umask: open, append, snapshot, compaction, repair', async () => {
    useUmask(0);
    const parent = freshDir();
    const directory = join(parent, 'nested', 'data');
    let store = await FileEventStore.open(directory, { rewriteBytes: Number.MAX_SAFE_INTEGER });
    await store.append('tasks/a', 0, [commit('a1', 1, 5)]);
    await store.append('tasks/b', 0, [commit('b1', 1, 2)]);
    await store.saveSnapshot({ stream: 'tasks/a', version: 3, state: { a: 3 } });
    await store.compact('tasks/a', 4);
    await store.rewrite();
    // Three records after the rewrite, in segment 2; the middle one is damaged below.
    const offsets: number[] = [];
    for (let i = 0; i < 3; i++) {
      offsets.push(statSync(segment(directory, 2)).size);
      await store.append('tasks/b', 2 + i, [commit(`b-late-${i}`, 3 + i)]);
    }
    await store.close();
    const bytes = readFileSync(segment(directory, 2));
    bytes[offsets[1]! + 20]! ^= 0x10;
    writeFileSync(segment(directory, 2), bytes);

    const report = await FileEventStore.repair(directory, { dryRun: false });
    expect(report.status).toBe('repaired');
    store = await FileEventStore.open(directory);
    onTestFinished(() => store.close());
    await store.saveSnapshot({ stream: 'tasks/b', version: 3, state: { b: 3 } });
    await store.append('tasks/b', 3, [commit('after-repair', 4)]);

    const found = modes(directory).map((entry) => entry.path.replace(/repair-[^/]+/, 'repair-*'));
    expect(found).toEqual(
      expect.arrayContaining([
        '.',
        'lock',
        'store.json',
        'log',
        'log/0000000000000001.base',
        'log/0000000000000002.log',
        'snapshots',
        'snapshots/tasks%2Fa.snap',
        'snapshots/tasks%2Fb.snap',
        'repair-*',
        `repair-*/0000000000000002.log.from-${offsets[1]}`,
      ]),
    );
    expectPrivate(directory);
    // The parents the open created are the store's too.
    expect(modes(parent).filter((entry) => entry.kind === 'dir' && entry.mode !== '700')).toEqual([]);
  });

  it('tightens an existing store of an older version (0755 directories, 0644 files) at open', async () => {
    const directory = freshDir();
    const first = await FileEventStore.open(directory, { rewriteBytes: Number.MAX_SAFE_INTEGER });
    await first.append('tasks/a', 0, [commit('a1', 1, 3)]);
    await first.saveSnapshot({ stream: 'tasks/a', version: 3, state: { a: 3 } });
    await first.rewrite();
    await first.close();
    // What an older version left, umask 022, with a backup of an old repair.
    mkdirSync(join(directory, 'repair-2024-01-01T00-00-00-000Z'));
    writeFileSync(join(directory, 'repair-2024-01-01T00-00-00-000Z', '0000000000000003.log'), 'cut bytes');
    for (const entry of modes(directory)) chmodSync(join(directory, entry.path), entry.kind === 'dir' ? 0o755 : 0o644);
    expect(modes(directory).every((entry) => entry.mode === (entry.kind === 'dir' ? '755' : '644'))).toBe(true);

    const store = await FileEventStore.open(directory);
    onTestFinished(() => store.close());
    expectPrivate(directory);
    expect(await store.read('tasks/a', 1, 10)).toHaveLength(3);
  });

  it('leaves a directory it refuses as it found it', async () => {
    const directory = freshDir();
    mkdirSync(directory, { mode: 0o755 });
    chmodSync(directory, 0o755);
    writeFileSync(join(directory, 'notes.txt'), 'mine');
    chmodSync(join(directory, 'notes.txt'), 0o644);
    await expect(FileEventStore.open(directory)).rejects.toThrow(/not empty and holds no Lockstep store/);
    expect(modes(directory).map((entry) => entry.mode)).toEqual(['755', '644']);
  });
});

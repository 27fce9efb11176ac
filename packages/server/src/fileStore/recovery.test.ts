import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import type { Commit, EventStore, StoredEvent } from '../eventStore.js';
import { CorruptLogError } from './CorruptLogError.js';
import { FileEventStore, type FileEventStoreOptions } from './FileEventStore.js';

const root = mkdtempSync(join(tmpdir(), 'lockstep-file-recovery-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(root, `d${dirs++}`);
const segment = (directory: string, seq = 1) => join(directory, 'log', `${String(seq).padStart(16, '0')}.log`);

async function openStore(directory: string, options: FileEventStoreOptions = {}): Promise<FileEventStore> {
  const store = await FileEventStore.open(directory, options);
  onTestFinished(() => store.close());
  return store;
}

function commit(commandId: string, from: number, count = 1): Commit {
  const events: StoredEvent[] = Array.from({ length: count }, (_, i) => ({
    version: from + i,
    type: 'task.created',
    data: { id: `${commandId}-${i}`, title: `Task ${from + i} ✓` },
    time: 1_000 + from + i,
    commandId,
  }));
  return { commandId, fingerprint: `fp:${commandId}`, events };
}

/** Everything a reader can see of the streams (and the given command ids), to compare recoveries. */
async function view(store: EventStore, commandIds: string[]): Promise<unknown> {
  const streams = [...(await store.streams())].sort();
  const out: Record<string, unknown> = {};
  for (const stream of streams) out[stream] = { info: await store.info(stream), events: await store.read(stream, 1, 10_000) };
  out['commands'] = [...(await store.findCommands(commandIds)).entries()].sort();
  return out;
}

/** A store with a few records in one segment; answers the offsets where each record starts. */
async function writeLog(directory: string, calls: number, options: FileEventStoreOptions = {}): Promise<{ ids: string[]; offsets: number[] }> {
  const store = await FileEventStore.open(directory, options);
  const ids: string[] = [];
  const offsets: number[] = [];
  const heads: Record<string, number> = {};
  for (let i = 0; i < calls; i++) {
    offsets.push(statSync(segment(directory)).size);
    const stream = i % 3 === 0 ? 'focus/p1' : 'tasks/p1';
    const head = heads[stream] ?? 0;
    const id = `cmd-${i}`;
    ids.push(id);
    await store.append(stream, head, [commit(id, head + 1, 1 + (i % 2))]);
    heads[stream] = head + 1 + (i % 2);
  }
  offsets.push(statSync(segment(directory)).size);
  await store.close();
  return { ids, offsets };
}

describe('recovery at open', () => {
  it('cut at every byte offset of the last record, recovers exactly the whole records before it', async () => {
    const directory = freshDir();
    const { ids, offsets } = await writeLog(directory, 6);
    const full = readFileSync(segment(directory));
    const lastStart = offsets[5]!;
    const lastEnd = offsets[6]!;
    expect(lastEnd).toBe(full.length);

    // What a reader sees with and without the last record.
    writeFileSync(segment(directory), full.subarray(0, lastStart));
    let store = await FileEventStore.open(directory);
    const withoutLast = await view(store, ids);
    await store.close();
    writeFileSync(segment(directory), full);
    store = await FileEventStore.open(directory);
    const withLast = await view(store, ids);
    await store.close();
    expect(withLast).not.toEqual(withoutLast);

    for (let cut = lastStart; cut <= lastEnd; cut++) {
      writeFileSync(segment(directory), full.subarray(0, cut));
      store = await FileEventStore.open(directory);
      try {
        expect(await view(store, ids), `cut at ${cut}`).toEqual(cut === lastEnd ? withLast : withoutLast);
        expect(store.recovery.tornTail, `cut at ${cut}`).toEqual(
          cut === lastStart || cut === lastEnd ? undefined : { file: segment(directory), offset: lastStart, bytes: cut - lastStart },
        );
      } finally {
        await store.close();
      }
      // The torn part is gone from the file: what follows is appended after whole records only.
      expect(statSync(segment(directory)).size).toBe(cut === lastEnd ? lastEnd : lastStart);
    }
  });

  it('cut anywhere in a group write, recovers exactly the whole records before the cut', async () => {
    const directory = freshDir();
    const store = await FileEventStore.open(directory);
    await store.append('tasks/p0', 0, [commit('before', 1)]);
    const groupStart = statSync(segment(directory)).size;
    // One write for the lot: four small records.
    const tiny = (i: number): Commit => ({ commandId: `g${i}`, fingerprint: 'f', events: [{ version: 1, type: 't', data: i, time: 0 }] });
    await Promise.all([0, 1, 2, 3].map((i) => store.append(`tasks/g${i}`, 0, [tiny(i)])));
    expect(store.writeStats.writes).toBe(2);
    await store.close();
    const full = readFileSync(segment(directory));
    const ends: number[] = [];
    // Record boundaries inside the group, found by opening at each cut.
    for (let cut = groupStart; cut <= full.length; cut++) {
      writeFileSync(segment(directory), full.subarray(0, cut));
      const reopened = await FileEventStore.open(directory);
      try {
        const whole = (await reopened.streams()).filter((stream) => stream.startsWith('tasks/g')).length;
        const kept = statSync(segment(directory)).size;
        expect(kept).toBeLessThanOrEqual(cut);
        if (kept === cut && !ends.includes(cut)) ends.push(cut);
        expect(whole, `cut at ${cut}`).toBe(ends.filter((end) => end > groupStart && end <= cut).length);
        expect((await reopened.findCommands(['before'])).size).toBe(1);
      } finally {
        await reopened.close();
      }
    }
    expect(ends).toHaveLength(5);
  });

  it('cuts a tail of zeros or of noise without a record in it', async () => {
    for (const tail of [Buffer.alloc(4096), Buffer.from('garbage that is no record at all'.repeat(10))]) {
      const directory = freshDir();
      const { ids } = await writeLog(directory, 4);
      const whole = statSync(segment(directory)).size;
      writeFileSync(segment(directory), Buffer.concat([readFileSync(segment(directory)), tail]));
      const store = await openStore(directory);
      expect(store.recovery.tornTail).toEqual({ file: segment(directory), offset: whole, bytes: tail.length });
      expect((await store.findCommands(ids)).size).toBe(4);
      // Appending goes on where the whole records end.
      const { head } = await store.info('tasks/p1');
      await store.append('tasks/p1', head, [commit('after', head + 1)]);
      const again = await openStore(await closed(store));
      expect(again.recovery.tornTail).toBeUndefined();
      expect((await again.findCommands(['after'])).size).toBe(1);
    }
  });

  it('stops at a flipped bit in the middle of the log, naming the file and the record, whatever byte it hits', async () => {
    const directory = freshDir();
    const { offsets } = await writeLog(directory, 5);
    const full = readFileSync(segment(directory));
    const start = offsets[2]!;
    const end = offsets[3]!;
    for (let at = start; at < end; at++) {
      const damaged = Buffer.from(full);
      damaged[at]! ^= 1 << (at % 8);
      writeFileSync(segment(directory), damaged);
      const opening = FileEventStore.open(directory);
      await expect(opening, `bit flipped at byte ${at}`).rejects.toBeInstanceOf(CorruptLogError);
      const error = (await opening.catch((e: unknown) => e)) as CorruptLogError;
      expect(error.file).toBe(segment(directory));
      expect(error.offset, `bit flipped at byte ${at}`).toBe(start);
      expect(error.message).toMatch(/lockstep repair/);
      // Never silently repaired: the file is as it was.
      expect(readFileSync(segment(directory)).equals(damaged)).toBe(true);
    }
    expect(existsSync(join(directory, 'lock'))).toBe(false);
  });

  it('repairs mid-log damage: a dry run reports, a real run cuts, keeps a copy, and the store opens', async () => {
    const directory = freshDir();
    const { ids, offsets } = await writeLog(directory, 6);
    let store = await FileEventStore.open(directory);
    const epoch = store.epoch;
    await store.close();
    const full = readFileSync(segment(directory));
    const damaged = Buffer.from(full);
    damaged[offsets[3]! + 20]! ^= 0x10;
    writeFileSync(segment(directory), damaged);

    const dry = await FileEventStore.repair(directory);
    expect(dry).toMatchObject({
      status: 'damaged',
      damage: { file: segment(directory), offset: offsets[3] },
      cut: { bytes: full.length - offsets[3]!, validRecordsLost: 2 },
    });
    expect(dry.damage?.reason).toMatch(/checksum mismatch.*valid record follows/);
    expect(readFileSync(segment(directory)).equals(damaged)).toBe(true);

    const done = await FileEventStore.repair(directory, { dryRun: false });
    expect(done.status).toBe('repaired');
    expect(done.epoch).not.toBe(epoch);
    const kept = readFileSync(join(done.backup!, `0000000000000001.log.from-${offsets[3]}`));
    expect(kept.equals(damaged.subarray(offsets[3]))).toBe(true);
    expect(statSync(segment(directory)).size).toBe(offsets[3]);

    store = await openStore(directory);
    expect(store.epoch).toBe(done.epoch);
    expect([...(await store.findCommands(ids)).keys()].sort()).toEqual(ids.slice(0, 3).sort());
    expect(await FileEventStore.repair(directory).catch((error: Error) => error.message)).toMatch(/locked by this process/);
    const head = (await store.info('tasks/p1')).head;
    await store.append('tasks/p1', head, [commit('after-repair', head + 1)]);
    expect((await FileEventStore.repair(await closed(store))).status).toBe('clean');
  });

  it('treats damage in a base as damage, and repairs it to whole streams', async () => {
    const directory = freshDir();
    const store = await FileEventStore.open(directory, { rewriteBytes: Number.MAX_SAFE_INTEGER });
    for (const [s, stream] of ['tasks/a', 'tasks/b', 'tasks/c'].entries()) {
      for (let v = 1; v <= 5; v++) await store.append(stream, v - 1, [commit(`${s}-${v}`, v)]);
    }
    await store.saveSnapshot({ stream: 'tasks/b', version: 5, state: { b: 5 } });
    await store.rewrite();
    await store.append('tasks/a', 5, [commit('after-rewrite', 6)]);
    await store.close();
    const base = join(directory, 'log', '0000000000000001.base');
    const bytes = readFileSync(base);
    // Damage the events of the second stream (tasks/b, carried in the middle of the base).
    const at = bytes.indexOf('"commandId":"1-3"');
    expect(at).toBeGreaterThan(0);
    bytes[at]! ^= 0x01;
    writeFileSync(base, bytes);
    await expect(FileEventStore.open(directory)).rejects.toThrow(/0000000000000001\.base at byte \d+: checksum mismatch .*\(in a base/);

    const done = await FileEventStore.repair(directory, { dryRun: false });
    expect(done.status).toBe('repaired');
    // tasks/a is whole in the base; its later segment went with the cut. tasks/b comes back from its
    // snapshot; tasks/c, after the damage, is lost.
    const reopened = await openStore(directory);
    expect(await reopened.info('tasks/a')).toEqual({ head: 5, oldestRetained: 1 });
    expect(await reopened.info('tasks/b')).toEqual({ head: 5, oldestRetained: 6 });
    expect(await reopened.loadSnapshot('tasks/b')).toEqual({ stream: 'tasks/b', version: 5, state: { b: 5 } });
    expect(await reopened.info('tasks/c')).toEqual({ head: 0, oldestRetained: 1 });
    expect(reopened.recovery.tornTail).toBeUndefined();
  });

  it('reports a missing segment instead of replaying around it', async () => {
    const directory = freshDir();
    await writeLog(directory, 2);
    // A reopen with another durability starts segment 2.
    const store = await FileEventStore.open(directory, { durability: 'os' });
    await store.append('tasks/p1', 2, [commit('in-two', 3)]);
    await store.close();
    unlinkSync(segment(directory, 1));
    await expect(FileEventStore.open(directory, { durability: 'os' })).rejects.toThrow(/segment 1 is missing/);
  });

  it('detects a damaged snapshot when loading it, and repair moves it away when its stream can be rebuilt', async () => {
    const directory = freshDir();
    const store = await FileEventStore.open(directory);
    await store.append('tasks/whole', 0, [commit('w1', 1, 3)]);
    await store.saveSnapshot({ stream: 'tasks/whole', version: 3, state: { whole: true } });
    await store.append('tasks/cut', 0, [commit('c1', 1, 3)]);
    await store.saveSnapshot({ stream: 'tasks/cut', version: 3, state: { cut: true } });
    await store.compact('tasks/cut', 4);
    await store.close();
    for (const name of ['tasks%2Fwhole.snap', 'tasks%2Fcut.snap']) {
      const path = join(directory, 'snapshots', name);
      const bytes = readFileSync(path);
      bytes[bytes.length - 3]! ^= 0x04;
      writeFileSync(path, bytes);
    }
    let reopened = await FileEventStore.open(directory);
    await expect(reopened.loadSnapshot('tasks/whole')).rejects.toBeInstanceOf(CorruptLogError);
    await reopened.close();
    const done = await FileEventStore.repair(directory, { dryRun: false });
    expect(done.unrecoverable).toEqual(['tasks/cut']);
    expect(done.snapshots.map((s) => s.action).sort()).toEqual(['kept: the stream cannot be rebuilt without it', 'moved to backup']);
    reopened = await openStore(directory);
    expect(await reopened.loadSnapshot('tasks/whole')).toBeUndefined();
    expect((await reopened.read('tasks/whole', 1, 10)).length).toBe(3);
    await expect(reopened.loadSnapshot('tasks/cut')).rejects.toBeInstanceOf(CorruptLogError);
  });

  it('continues a stream from its snapshot when the log lost events the snapshot holds, with a new epoch', async () => {
    const directory = freshDir();
    const store = await FileEventStore.open(directory, { durability: 'os' });
    await store.append('tasks/a', 0, [commit('c1', 1, 3)]);
    // As after a power failure in `os` mode: the snapshot (always fsynced) is ahead of the log.
    await store.saveSnapshot({ stream: 'tasks/a', version: 7, state: { at: 7 } });
    const epoch = store.epoch;
    await store.close();
    const reopened = await openStore(directory, { durability: 'os' });
    expect(reopened.recovery.adoptedSnapshots).toEqual([{ stream: 'tasks/a', version: 7, logHead: 3 }]);
    expect(reopened.epoch).not.toBe(epoch);
    expect(await reopened.info('tasks/a')).toEqual({ head: 7, oldestRetained: 8 });
    await reopened.append('tasks/a', 7, [commit('c2', 8)]);
    const again = await openStore(await closed(reopened), { durability: 'os' });
    expect(again.recovery.adoptedSnapshots).toEqual([]);
    expect(again.epoch).toBe(reopened.epoch);
    expect((await again.read('tasks/a', 1, 10)).map((event) => event.version)).toEqual([8]);
  });

  it('changes the epoch after cutting a torn tail written with durability os, not with fsync', async () => {
    for (const durability of ['fsync', 'os'] as const) {
      const directory = freshDir();
      await writeLog(directory, 3, { durability });
      const store = await FileEventStore.open(directory, { durability });
      const epoch = store.epoch;
      await store.close();
      truncateSync(segment(directory), statSync(segment(directory)).size - 5);
      const reopened = await openStore(directory, { durability });
      expect(reopened.recovery.tornTail).toBeDefined();
      expect(reopened.epoch === epoch, durability).toBe(durability === 'fsync');
      expect(reopened.recovery.epochRotated !== undefined).toBe(durability === 'os');
      expect(readdirSync(join(directory, 'log'))).toEqual(['0000000000000001.log']);
    }
  });
});

async function closed(store: FileEventStore): Promise<string> {
  await store.close();
  return store.directory;
}

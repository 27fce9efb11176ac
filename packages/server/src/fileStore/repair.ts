import { open, rename, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { CorruptLogError } from './CorruptLogError.js';
import { DirectoryLock } from './directoryLock.js';
import { fsyncDirectory } from './fsUtil.js';
import { replayLog, type LogDamage } from './logReplay.js';
import { PRIVATE_FILE_MODE, makePrivateDirectory } from './privateModes.js';
import { RecordScanner, isProblem } from './recordScanner.js';
import { RecordType, encodeJsonRecord } from './records.js';
import { listSnapshots, readSnapshotFile } from './snapshotFiles.js';
import { readStoreMeta, rotateEpoch } from './storeMeta.js';
import type { RecoveryReport } from './FileEventStore.js';

export interface RepairOptions {
  /** Only report what a repair would do. Default true: cutting needs `dryRun: false`. */
  dryRun?: boolean;
}

export interface RepairReport {
  directory: string;
  /**
   * `clean`: nothing to repair (a torn tail, cut by every open anyway, is reported in `tornTail`);
   * `damaged`: a dry run found damage (see `damage`, `cut`, `snapshots`); `repaired`: the log was
   * cut, the cut part kept in `backup`, and the store opened cleanly afterwards.
   */
  status: 'clean' | 'damaged' | 'repaired';
  /** The first bad record of the log. */
  damage?: { file: string; offset: number; reason: string };
  /** What the repair cuts (or cut): bytes, whole records among them, and the files concerned. */
  cut?: { bytes: number; validRecordsLost: number; files: string[] };
  /** Snapshot files that fail their checksum, and what is (or would be) done with each. */
  snapshots: Array<{ file: string; reason: string; action: 'move to backup' | 'moved to backup' | 'kept: the stream cannot be rebuilt without it' }>;
  /** Streams that cannot be rebuilt from this directory (restore them from a backup). */
  unrecoverable: string[];
  tornTail?: { file: string; offset: number; bytes: number };
  /** Where the cut bytes and moved files are kept. */
  backup?: string;
  /** The new epoch (a repair loses writes clients may have seen, so they must resync). */
  epoch?: string;
  /** What the open after the repair found. */
  recovery?: RecoveryReport;
}

/** See {@link FileEventStore.repair}. `reopen` opens (and the repair closes) the repaired store. */
export async function repairFileStore(
  root: string,
  options: RepairOptions,
  reopen: (directory: string) => Promise<{ recovery: RecoveryReport; close(): Promise<void> }>,
): Promise<RepairReport> {
  const dryRun = options.dryRun ?? true;
  const meta = await readStoreMeta(root);
  if (!meta) throw new Error(`${root} holds no Lockstep store (no store.json)`);
  const lock = await DirectoryLock.acquire(root);
  let locked = true;
  const report: RepairReport = { directory: root, status: 'clean', snapshots: [], unrecoverable: [] };
  try {
    const logDirectory = join(root, 'log');
    const snapshotsDirectory = join(root, 'snapshots');
    const replay = await replayLog({ directory: root, logDirectory, storeId: meta.storeId, maxCommandRecords: Number.MAX_SAFE_INTEGER, mode: 'inspect' });
    for (const file of replay.files) await file.close();
    if (replay.tornTail) report.tornTail = { file: replay.tornTail.path, offset: replay.tornTail.offset, bytes: replay.tornTail.bytes };

    const damage = replay.damage;
    let cutPlan: { file: string | undefined; offset: number; later: string[] } | undefined;
    if (damage) {
      report.damage = { file: damage.path, offset: damage.offset, reason: damage.reason };
      cutPlan = planCut(damage, replay.paths);
      report.cut = await measureCut(cutPlan);
    }

    // Snapshots: each verified whole. A bad one goes (to the backup) when its stream can be rebuilt
    // from its events, and stays, reported, when it cannot.
    const listing = await listSnapshots(snapshotsDirectory, { removeTemporary: false, collectProblems: true, tighten: false });
    const badSnapshots: Array<{ path: string; reason: string; stream: string | undefined }> = listing.problems.map((p) => ({
      path: p.path,
      reason: p.error.reason,
      stream: undefined,
    }));
    for (const entry of listing.entries) {
      try {
        await readSnapshotFile(entry.path);
      } catch (error) {
        if (!(error instanceof CorruptLogError)) throw error;
        badSnapshots.push({ path: entry.path, reason: error.reason, stream: entry.stream });
      }
    }
    const toMove: string[] = [];
    for (const bad of badSnapshots) {
      const stream = bad.stream === undefined ? undefined : replay.state.streams.get(bad.stream);
      const rebuildable = bad.stream !== undefined && (stream === undefined || stream.oldest <= 1);
      if (rebuildable) toMove.push(bad.path);
      else report.unrecoverable.push(bad.stream ?? `the stream of ${basename(bad.path)}`);
      report.snapshots.push({
        file: bad.path,
        reason: bad.reason,
        action: rebuildable ? (dryRun ? 'move to backup' : 'moved to backup') : 'kept: the stream cannot be rebuilt without it',
      });
    }

    if (!cutPlan && toMove.length === 0) {
      report.status = report.unrecoverable.length > 0 ? 'damaged' : 'clean';
      return report;
    }
    if (dryRun) {
      report.status = 'damaged';
      return report;
    }

    const backup = join(root, `repair-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await makePrivateDirectory(backup, { tightenExisting: false });
    report.backup = backup;
    if (cutPlan && damage) await applyCut(cutPlan, damage, backup, logDirectory);
    for (const path of toMove) await rename(path, join(backup, basename(path)));
    await fsyncDirectory(backup);
    await fsyncDirectory(logDirectory);
    await fsyncDirectory(snapshotsDirectory);
    const rotated = await rotateEpoch(
      root,
      meta,
      damage ? `repair cut the log at ${damage.path} byte ${damage.offset} (${damage.reason})` : 'repair moved damaged snapshots away',
    );
    report.epoch = rotated.epoch;

    await lock.release();
    locked = false;
    const store = await reopen(root);
    report.recovery = store.recovery;
    await store.close();
    report.status = 'repaired';
    return report;
  } finally {
    if (locked) await lock.release();
  }
}

/** The cut: the damaged file from an offset (or wholly), and every later log file. */
function planCut(damage: LogDamage, paths: readonly string[]): { file: string | undefined; offset: number; later: string[] } {
  const damaged = paths[damage.fileIndex];
  // A file missing from the sequence: everything from the next one found goes.
  if (damaged === undefined || damaged !== damage.path) return { file: undefined, offset: 0, later: paths.slice(damage.fileIndex) };
  const offset = damage.baseProgress ? damage.baseProgress.safeOffset : damage.offset;
  return { file: damaged, offset, later: paths.slice(damage.fileIndex + 1) };
}

async function measureCut(plan: { file: string | undefined; offset: number; later: string[] }): Promise<NonNullable<RepairReport['cut']>> {
  let bytes = 0;
  let records = 0;
  const files: string[] = [];
  if (plan.file !== undefined) {
    const size = (await stat(plan.file)).size;
    bytes += size - plan.offset;
    records += await countValidRecords(plan.file, plan.offset);
    files.push(plan.offset === 0 ? plan.file : `${plan.file} from byte ${plan.offset}`);
  }
  for (const path of plan.later) {
    bytes += (await stat(path)).size;
    records += await countValidRecords(path, 0);
    files.push(path);
  }
  return { bytes, validRecordsLost: records, files };
}

/** Whole, valid records from `from` on (skipping damage), for the report of what is lost. */
async function countValidRecords(path: string, from: number): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const scanner = new RecordScanner(handle, (await handle.stat()).size);
    scanner.position = from;
    let count = 0;
    for (;;) {
      const next = await scanner.next();
      if (next === undefined) return count;
      if (!isProblem(next)) {
        count++;
        continue;
      }
      const after = await scanner.validRecordAfter(next.offset);
      if (after === undefined) return count;
      scanner.position = after;
    }
  } finally {
    await handle.close();
  }
}

async function applyCut(
  plan: { file: string | undefined; offset: number; later: string[] },
  damage: LogDamage,
  backup: string,
  logDirectory: string,
): Promise<void> {
  if (plan.file !== undefined) {
    const name = basename(plan.file);
    if (plan.offset === 0) {
      await rename(plan.file, join(backup, name));
    } else {
      // Copy what is cut, durably, before cutting it.
      const kept = join(backup, `${name}.from-${plan.offset}`);
      const source = await open(plan.file, 'r+');
      try {
        const size = (await source.stat()).size;
        const target = await open(kept, 'wx', PRIVATE_FILE_MODE);
        try {
          const chunk = Buffer.allocUnsafe(1024 * 1024);
          for (let at = plan.offset; at < size;) {
            const { bytesRead } = await source.read(chunk, 0, Math.min(chunk.length, size - at), at);
            if (bytesRead === 0) break;
            await target.write(chunk, 0, bytesRead);
            at += bytesRead;
          }
          await target.sync();
        } finally {
          await target.close();
        }
        await source.truncate(plan.offset);
        if (damage.baseProgress) {
          // A base must end with its end record, counting what it still holds.
          const end = encodeJsonRecord(RecordType.End, { streams: damage.baseProgress.streams, commands: damage.baseProgress.commands });
          await source.write(end, 0, end.length, plan.offset);
        }
        await source.sync();
      } finally {
        await source.close();
      }
    }
  }
  for (const path of plan.later) await rename(path, join(backup, basename(path)));
  await fsyncDirectory(logDirectory);
}

import { readdir, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StoreConflictError, type CommandRecord, type Commit, type EventStore, type Snapshot, type StoredEvent, type StreamInfo } from '../eventStore.js';
import { CorruptLogError } from './CorruptLogError.js';
import { DirectoryLock } from './directoryLock.js';
import { readEvents } from './eventReader.js';
import { isTemporaryName, writeFileAtomic } from './fsUtil.js';
import { LogFile, createLogFile } from './logFile.js';
import { replayLog } from './logReplay.js';
import { rewriteLog } from './logRewrite.js';
import type { CommitMeta, LogState } from './logState.js';
import { LogWriter, type Durability } from './logWriter.js';
import { makePrivateDirectory, tightenEntries, tightenPath } from './privateModes.js';
import { RecordType, encodeJsonRecord, encodeSplitRecord } from './records.js';
import { repairFileStore, type RepairOptions, type RepairReport } from './repair.js';
import { encodeSnapshot, listSnapshots, readSnapshotFile, snapshotPath } from './snapshotFiles.js';
import { createStoreMeta, readStoreMeta, rotateEpoch, type StoreMeta } from './storeMeta.js';

export interface FileEventStoreOptions {
  /**
   * When an append resolves. `fsync` (default): once its record is on stable storage (`fdatasync`),
   * so an acknowledged command survives a crash of the process, the OS or the machine. `os`: once the
   * record is handed to the operating system (`write`), which survives a crash of the process but
   * not of the machine — faster, and the last moments of acknowledged commands can be lost in a power
   * failure.
   */
  durability?: Durability;
  /** How many command ids are remembered for deduplication (oldest forgotten first). Default 100,000. */
  maxCommandRecords?: number;
  /**
   * The log is rewritten into a new base (compaction of the files) once the segments written since
   * the last base hold at least this many bytes, and at least as many as that base. Default 64 MiB.
   */
  rewriteBytes?: number;
  /**
   * Errors the store recovered from (a failed background rewrite), and a data directory open to other
   * users that the store cannot make private (it belongs to another user). Default: console.error.
   */
  onError?: (error: unknown, context: string) => void;
}

export const FILE_STORE_DEFAULTS = {
  durability: 'fsync',
  maxCommandRecords: 100_000,
  rewriteBytes: 64 * 1024 * 1024,
} as const satisfies Required<Omit<FileEventStoreOptions, 'onError'>>;

/** What opening the store found and did. */
export interface RecoveryReport {
  /** Records and bytes replayed to rebuild the index (the live data, never compacted history). */
  records: number;
  bytes: number;
  /** A partial write at the end of the log, cut off: never an acknowledged append in `fsync` mode. */
  tornTail?: { file: string; offset: number; bytes: number };
  /** Streams whose snapshot is ahead of their log (writes lost in `os` mode, or cut by a repair). */
  adoptedSnapshots: Array<{ stream: string; version: number; logHead: number }>;
  /** Set when the epoch changed at this open, with the reason. */
  epochRotated?: string;
}

const LOG_DIRECTORY = 'log';
const SNAPSHOT_DIRECTORY = 'snapshots';

/**
 * A durable event store in a directory: an append-only, checksummed log with group commit, crash
 * recovery, snapshots and compaction. One process owns the directory at a time. The format, the
 * durability promises and recovery are described in docs/storage.md.
 *
 * ```ts
 * const store = await FileEventStore.open('./data');
 * const hub = new Hub({ domains: builtInDomains, store });
 * // … on shutdown
 * await hub.close();
 * await store.close();
 * ```
 */
export class FileEventStore implements EventStore {
  readonly #watchers = new Set<(stream: string, head: number) => void>();
  /** Command ids of appends accepted but not yet durable. */
  readonly #pendingIds = new Set<string>();
  #rewriting: Promise<void> | undefined;
  /** Segment bytes at which the next rewrite may start (moved on after a failed one). */
  #rewriteFloor = 0;
  #closing: Promise<void> | undefined;
  /** Reads in flight: `close` waits for them before closing the files they read. */
  readonly #reads = new Set<Promise<unknown>>();

  private constructor(
    readonly directory: string,
    readonly durability: Durability,
    private meta: StoreMeta,
    private readonly state: LogState,
    private readonly files: LogFile[],
    private readonly writer: LogWriter,
    private readonly lock: DirectoryLock,
    private readonly options: Required<Omit<FileEventStoreOptions, 'durability' | 'maxCommandRecords'>>,
    readonly recovery: RecoveryReport,
  ) {}

  /**
   * Opens (or creates) the store in `directory`: takes the directory's lock, replays the log, cuts a
   * torn tail. Throws {@link StoreLockedError} when another process owns the directory and
   * {@link CorruptLogError} on damage inside the log (see `repair`).
   */
  static async open(directory: string, options: FileEventStoreOptions = {}): Promise<FileEventStore> {
    const root = resolve(directory);
    const durability = options.durability ?? FILE_STORE_DEFAULTS.durability;
    const maxCommandRecords = options.maxCommandRecords ?? FILE_STORE_DEFAULTS.maxCommandRecords;
    const settings = {
      rewriteBytes: options.rewriteBytes ?? FILE_STORE_DEFAULTS.rewriteBytes,
      onError: options.onError ?? ((error: unknown, context: string) => console.error(`[lockstep file store] ${context}:`, error)),
    };
    // Everything below the root is private (docs/storage.md, "Files are private"). An existing root is
    // tightened only once it is known to hold a store, never a directory the open then refuses.
    const { created } = await makePrivateDirectory(root, { tightenExisting: false });
    const lock = await DirectoryLock.acquire(root);
    let files: LogFile[] = [];
    try {
      let meta = (await readStoreMeta(root)) ?? (await createStoreMeta(root));
      if (!created) await tightenRoot(root, settings.onError);
      const entries = await readdir(root, { withFileTypes: true });
      for (const entry of entries) if (isTemporaryName(entry.name)) await unlink(join(root, entry.name)).catch(() => {});
      // What an older version left open to others; log and snapshot files are tightened as they are opened.
      await tightenEntries(
        root,
        entries.filter((entry) => !isTemporaryName(entry.name)),
        new Set([LOG_DIRECTORY, SNAPSHOT_DIRECTORY]),
      );
      const logDirectory = join(root, LOG_DIRECTORY);
      const snapshotsDirectory = join(root, SNAPSHOT_DIRECTORY);
      await makePrivateDirectory(logDirectory, { tightenExisting: false });
      await makePrivateDirectory(snapshotsDirectory, { tightenExisting: false });

      const replay = await replayLog({ directory: root, logDirectory, storeId: meta.storeId, maxCommandRecords, mode: 'open' });
      files = replay.files;
      const { state } = replay;
      const recovery: RecoveryReport = { records: replay.records, bytes: replay.bytes, adoptedSnapshots: [] };
      if (replay.tornTail) recovery.tornTail = { file: replay.tornTail.path, offset: replay.tornTail.offset, bytes: replay.tornTail.bytes };

      // The segment to append to: the last one, unless it has no header (cut to nothing) or was
      // written with another durability (recovery must know which promise a torn tail broke).
      let active = files[files.length - 1];
      if (active?.kind === 'segment' && (active.size === 0 || replay.lastDurability !== durability)) {
        if (active.size === 0) {
          files.pop();
          await active.retire();
          active = await createLogFile(logDirectory, 'segment', active.seq, { storeId: meta.storeId, durability });
        } else {
          await active.handle.datasync();
          active = await createLogFile(logDirectory, 'segment', active.seq + 1, { storeId: meta.storeId, durability });
        }
        files.push(active);
      } else if (active === undefined || active.kind === 'base') {
        active = await createLogFile(logDirectory, 'segment', (active?.seq ?? 0) + 1, { storeId: meta.storeId, durability });
        files.push(active);
      }

      // Snapshots: the latest of each stream. One ahead of its stream's log is adopted (see below).
      const snapshots = await listSnapshots(snapshotsDirectory, { removeTemporary: true, collectProblems: false, tighten: true });
      const adopt: Array<{ stream: string; version: number }> = [];
      for (const entry of snapshots.entries) {
        const stream = state.stream(entry.stream);
        stream.snapshot = { version: entry.version, path: entry.path };
        if (entry.version > stream.head) {
          recovery.adoptedSnapshots.push({ stream: entry.stream, version: entry.version, logHead: stream.head });
          adopt.push({ stream: entry.stream, version: entry.version });
        }
        stream.exists = true;
      }

      let rotation: string | undefined;
      if (replay.tornTail && replay.tornTail.durability === 'os') {
        rotation = `a torn tail was cut from ${replay.tornTail.path}, written with durability 'os': acknowledged writes may be lost`;
      }
      if (adopt.length > 0) rotation = `snapshots ahead of their log were adopted (${adopt.map((a) => a.stream).join(', ')})`;
      if (rotation !== undefined) {
        meta = await rotateEpoch(root, meta, rotation);
        recovery.epochRotated = rotation;
      }

      const describe = `file event store ${root}`;
      let afterBatch = () => {};
      const writer = new LogWriter(active, durability, describe, () => afterBatch());
      const store = new FileEventStore(root, durability, meta, state, files, writer, lock, settings, recovery);
      // A snapshot ahead of its log: its state holds events the log lost (written in `os` mode and
      // lost with the machine, or cut by a repair). The stream continues from the snapshot: head
      // and horizon move to it, so the hub neither replays a shorter log under it nor conflicts.
      afterBatch = () => store.#maybeRewrite();
      for (const { stream, version } of adopt) {
        await writer.write(encodeJsonRecord(RecordType.Stream, { s: stream, head: version, oldest: version + 1 }), () =>
          state.applyStream(stream, version, version + 1),
        );
      }
      store.#maybeRewrite();
      return store;
    } catch (error) {
      for (const file of files) await file.close();
      await lock.release();
      throw error;
    }
  }

  /**
   * Checks a data directory and, unless `dryRun` (the default), cuts the log at its first bad record,
   * keeping a copy of everything cut in `<dir>/repair-<time>/`. See docs/storage.md, "Repair".
   */
  static repair(directory: string, options: RepairOptions = {}): Promise<RepairReport> {
    return repairFileStore(resolve(directory), options, (dir) => FileEventStore.open(dir));
  }

  get epoch(): string {
    return this.meta.epoch;
  }

  /** Writes and records written since open: `writes < records` shows group commit at work. */
  get writeStats(): { writes: number; records: number } {
    return { ...this.writer.stats };
  }

  #usable(): void {
    if (this.#closing) throw new Error(`file event store ${this.directory} is closed`);
    if (this.writer.failure) throw this.writer.failure;
  }

  async info(stream: string): Promise<StreamInfo> {
    this.#usable();
    const index = this.state.streams.get(stream);
    return index?.exists ? { head: index.head, oldestRetained: index.oldest } : { head: 0, oldestRetained: 1 };
  }

  async append(stream: string, expectedHead: number, commits: readonly Commit[]): Promise<void> {
    this.#usable();
    // Everything is checked, and the record encoded, before anything is reserved.
    const existing = this.state.streams.get(stream);
    const head = existing?.pendingHead ?? 0;
    if (head !== expectedHead) {
      // Racing an append still being written: answer once it is durable, with a head one can read.
      if (existing?.writing) await existing.lastWrite.catch(() => {});
      throw new StoreConflictError(stream, expectedHead, existing?.exists ? existing.head : 0);
    }
    let next = head + 1;
    const ids = new Set<string>();
    const records: CommitMeta['c'] = [];
    const events: StoredEvent[] = [];
    for (const commit of commits) {
      const id = commit.commandId;
      if (ids.has(id)) throw new RangeError(`command id ${id} appears twice in one append`);
      if (this.state.commands.has(id) || this.#pendingIds.has(id)) throw new StoreConflictError(stream, expectedHead, head, id);
      ids.add(id);
      for (const event of commit.events) {
        if (event.version !== next) throw new Error(`event version ${event.version} appended where ${next} was due`);
        events.push(event);
        next++;
      }
      records.push(commit.refusal ? [id, commit.fingerprint, next - 1, commit.refusal] : [id, commit.fingerprint, next - 1]);
    }
    const meta: CommitMeta = { s: stream, v: head + 1, n: events.length, c: records };
    const record = encodeSplitRecord(RecordType.Commit, meta, JSON.stringify(events));

    const index = this.state.stream(stream);
    index.pendingHead = next - 1;
    for (const id of ids) this.#pendingIds.add(id);
    const written = this.writer.write(record, (file, offset) => this.state.applyCommit(meta, { file, offset, size: record.length }));
    index.lastWrite = written;
    try {
      await written;
    } finally {
      for (const id of ids) this.#pendingIds.delete(id);
    }
    this.#announce(stream, next - 1);
  }

  async read(stream: string, from: number, limit: number): Promise<StoredEvent[]> {
    this.#usable();
    const index = this.state.streams.get(stream);
    if (!index?.exists || limit <= 0) return [];
    const start = Math.max(from, index.oldest);
    const end = index.head - start + 1 <= limit ? index.head : start + limit - 1;
    if (start > end) return [];
    const reading = readEvents(index.locate(start, end), start, end);
    this.#reads.add(reading);
    try {
      return await reading;
    } finally {
      this.#reads.delete(reading);
    }
  }

  async findCommands(commandIds: readonly string[]): Promise<Map<string, CommandRecord>> {
    this.#usable();
    const found = new Map<string, CommandRecord>();
    for (const id of commandIds) {
      const record = this.state.commands.get(id);
      if (record) found.set(id, { ...record });
    }
    return found;
  }

  async loadSnapshot(stream: string): Promise<Snapshot | undefined> {
    this.#usable();
    const index = this.state.streams.get(stream);
    if (!index?.snapshot) {
      if (index && index.oldest > 1) {
        throw new CorruptLogError(
          snapshotPath(join(this.directory, SNAPSHOT_DIRECTORY), stream),
          0,
          `stream ${stream} has no snapshot, yet its events before version ${index.oldest} were compacted: it cannot be rebuilt`,
          this.directory,
        );
      }
      return undefined;
    }
    const snapshot = await readSnapshotFile(index.snapshot.path);
    if (snapshot.stream !== stream) throw new CorruptLogError(index.snapshot.path, 0, `the snapshot of ${stream} holds stream ${snapshot.stream}`);
    return snapshot;
  }

  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.#usable();
    // Serialized now: what the caller changes afterwards is not part of the snapshot.
    const record = encodeSnapshot(snapshot);
    const { stream: name, version } = snapshot;
    const index = this.state.stream(name);
    const path = snapshotPath(join(this.directory, SNAPSHOT_DIRECTORY), name);
    // One after the other per stream, and the newest wins: an older snapshot saved later (a slower
    // hub on the same store) is ignored, so the snapshot always reaches the compaction horizon.
    const saved = index.snapshotChain.then(async () => {
      if (index.snapshot && index.snapshot.version > version) return;
      await writeFileAtomic(path, record);
      index.snapshot = { version, path };
      index.exists = true;
    });
    index.snapshotChain = saved.catch(() => {});
    await saved;
  }

  async compact(stream: string, before: number): Promise<void> {
    this.#usable();
    const index = this.state.streams.get(stream);
    if (!index?.exists || index.snapshot === undefined) return;
    const cut = Math.min(before, index.snapshot.version + 1, index.head + 1);
    if (cut <= index.oldest) return;
    await this.writer.write(encodeJsonRecord(RecordType.Compact, { s: stream, before: cut }), () => this.state.applyCompact(stream, cut));
  }

  watch(listener: (stream: string, head: number) => void): () => void {
    this.#watchers.add(listener);
    return () => this.#watchers.delete(listener);
  }

  #announce(stream: string, head: number): void {
    for (const listener of this.#watchers) queueMicrotask(() => listener(stream, head));
  }

  async streams(): Promise<string[]> {
    this.#usable();
    return [...this.state.streams.values()].filter((stream) => stream.exists).map((stream) => stream.name);
  }

  /** Bytes of the log files (base and segments) now. */
  get logBytes(): number {
    return this.files.reduce((sum, file) => sum + file.size, 0);
  }

  /** Starts a rewrite of the log when the segments since the last base have grown enough. */
  #maybeRewrite(): void {
    if (this.#rewriting || this.#closing || this.writer.failure) return;
    let segments = 0;
    let base = 0;
    for (const file of this.files) {
      if (file.kind === 'base') base += file.size;
      else segments += file.size;
    }
    if (segments < Math.max(this.options.rewriteBytes, base, this.#rewriteFloor)) return;
    this.#startRewrite().catch((error: unknown) => {
      // Nothing was lost (the old files still hold everything); try again after as much growth.
      this.#rewriteFloor = segments * 2;
      this.options.onError(error, 'rewriting the log');
    });
  }

  #startRewrite(): Promise<void> {
    this.#rewriting ??= rewriteLog({
      logDirectory: join(this.directory, LOG_DIRECTORY),
      storeId: this.meta.storeId,
      durability: this.durability,
      state: this.state,
      writer: this.writer,
      files: this.files,
    })
      .then(() => {
        this.#rewriteFloor = 0;
      })
      .finally(() => {
        this.#rewriting = undefined;
      });
    return this.#rewriting;
  }

  /**
   * Rewrites the log into a new base now (normally automatic, see `rewriteBytes`). Resolves when
   * the base has replaced the files it covers.
   */
  async rewrite(): Promise<void> {
    this.#usable();
    await this.#rewriting?.catch(() => {});
    await this.#startRewrite();
  }

  /** Resolves once the appends handed over so far are written and a running rewrite is done. */
  async settled(): Promise<void> {
    this.#usable();
    await this.writer.exclusive(async () => {});
    await this.#rewriting?.catch(() => {});
  }

  /** Waits for appends in flight and a running rewrite, closes the files and releases the lock. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // After the appends in flight; with durability 'os' a clean close still leaves it all durable.
      await this.writer
        .exclusive(async () => {
          if (this.durability === 'os') await this.writer.active.handle.datasync();
        })
        .catch(() => {});
      await this.#rewriting?.catch(() => {});
      await Promise.all([...this.state.streams.values()].map((stream) => stream.snapshotChain));
      await Promise.allSettled([...this.#reads]);
      for (const file of this.files) await file.close();
      await this.lock.release();
    })();
    return this.#closing;
  }
}

/**
 * Removes group and other access from the root of an existing store (one written by an older version,
 * or opened up by hand). A root owned by another user cannot be changed: that is reported, not fatal —
 * the files inside are still private.
 */
async function tightenRoot(root: string, onError: (error: unknown, context: string) => void): Promise<void> {
  try {
    await tightenPath(root);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    onError(error, `${root} is open to other users and belongs to another user, so it cannot be made private (chmod 700 it)`);
  }
}

import { open, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CorruptLogError } from './CorruptLogError.js';
import { isTemporaryName } from './fsUtil.js';
import { LogFile, logFileName, parseLogFileName, type LogFileKind } from './logFile.js';
import { LogInconsistency, LogState, type EventLocation } from './logState.js';
import { tightenOpenFile } from './privateModes.js';
import { RecordScanner, isProblem, type ScannedRecord } from './recordScanner.js';
import { commandsMeta, commitMeta, compactMeta, endMeta, eventsMeta, headerMeta, streamMeta } from './recordMeta.js';
import { FORMAT_VERSION, RecordType, splitMeta } from './records.js';

export interface ReplayOptions {
  /** The data directory (named in error messages). */
  directory: string;
  logDirectory: string;
  storeId: string;
  maxCommandRecords: number;
  /**
   * `open`: remove leftovers of interrupted work, cut a torn tail, throw CorruptLogError on damage.
   * `inspect`: change nothing; stop at the first damage and describe it (for repair).
   */
  mode: 'open' | 'inspect';
}

export interface LogDamage {
  path: string;
  /** Index in `files` of the damaged file (`files.length` when a whole file is missing). */
  fileIndex: number;
  offset: number;
  reason: string;
  /**
   * For a damaged base: where it may be cut so that it holds only whole streams (`safeOffset`, at or
   * before `offset`), and the stream and command records before that point.
   */
  baseProgress?: { safeOffset: number; streams: number; commands: number };
}

export interface TornTail {
  path: string;
  offset: number;
  bytes: number;
  /** The durability the torn segment was written with. */
  durability: 'fsync' | 'os' | undefined;
}

export interface ReplayResult {
  state: LogState;
  /** Open handles, in log order: the base (if any), then the segments. The last segment is writable. */
  files: LogFile[];
  damage?: LogDamage;
  tornTail?: TornTail;
  /** Every log file in log order (also those after a damage, which are not opened). */
  paths: string[];
  /** Durability in the header of the last segment (undefined when it has no header yet). */
  lastDurability: 'fsync' | 'os' | undefined;
  records: number;
  bytes: number;
}

/** Replays the log of a data directory into a {@link LogState}: the base, then every segment after it. */
export async function replayLog(options: ReplayOptions): Promise<ReplayResult> {
  const { logDirectory, mode } = options;
  const names = (await readdir(logDirectory)).sort();
  const found: Array<{ kind: LogFileKind; seq: number; name: string }> = [];
  for (const name of names) {
    if (isTemporaryName(name)) {
      if (mode === 'open') await unlink(join(logDirectory, name)).catch(() => {});
      continue;
    }
    const parsed = parseLogFileName(name);
    if (parsed) found.push({ ...parsed, name });
  }
  const bases = found.filter((file) => file.kind === 'base').sort((a, b) => a.seq - b.seq);
  const base = bases[bases.length - 1];
  const baseSeq = base?.seq ?? 0;
  // A base covers every segment up to its number: older bases and those segments are leftovers of
  // a rewrite interrupted after its base was renamed into place.
  const superseded = found.filter((file) => file !== base && (file.kind === 'base' || file.seq <= baseSeq));
  if (mode === 'open') for (const file of superseded) await unlink(join(logDirectory, file.name)).catch(() => {});
  const segments = found.filter((file) => file.kind === 'segment' && file.seq > baseSeq).sort((a, b) => a.seq - b.seq);
  const ordered = [...(base ? [base] : []), ...segments];

  const result: ReplayResult = {
    state: new LogState(options.maxCommandRecords),
    files: [],
    paths: ordered.map((entry) => join(logDirectory, entry.name)),
    lastDurability: undefined,
    records: 0,
    bytes: 0,
  };
  const damage = (value: LogDamage): ReplayResult => {
    if (mode === 'open') throw new CorruptLogError(value.path, value.offset, value.reason, options.directory);
    result.damage = value;
    return result;
  };

  let expectedSeq = baseSeq + 1;
  for (const [index, entry] of ordered.entries()) {
    const path = join(logDirectory, entry.name);
    if (entry.kind === 'segment') {
      if (entry.seq !== expectedSeq) {
        return damage({
          path: join(logDirectory, logFileName('segment', expectedSeq)),
          fileIndex: index,
          offset: 0,
          reason: `segment ${expectedSeq} is missing (the next one found is ${entry.name})`,
        });
      }
      expectedSeq++;
    }
    const last = index === ordered.length - 1 && entry.kind === 'segment';
    const handle = await open(path, last && mode === 'open' ? 'r+' : 'r');
    const info = await handle.stat();
    const file = new LogFile(entry.kind, entry.seq, path, handle, info.size);
    result.files.push(file);
    // A file of an older version (0644) becomes private; the stat was needed for its size anyway.
    if (mode === 'open') await tightenOpenFile(handle, info.mode);
    const problem = await replayFile(file, last, options, result);
    if (problem) return damage({ ...problem, path, fileIndex: index });
  }
  return result;
}

/** Replays one file; answers its damage, if any. A torn tail of the last segment is not damage. */
async function replayFile(
  file: LogFile,
  last: boolean,
  options: ReplayOptions,
  result: ReplayResult,
): Promise<Omit<LogDamage, 'path' | 'fileIndex'> | undefined> {
  const scanner = new RecordScanner(file.handle, file.size);
  const replay = new FileReplay(file, options, result);
  for (;;) {
    const next = await scanner.next();
    if (next === undefined) break;
    if (isProblem(next)) {
      if (!last) {
        const where = file.kind === 'base' ? 'a base, which is complete before it is renamed into place' : 'a sealed segment';
        return { offset: next.offset, reason: `${next.reason} (in ${where})`, ...replay.progress() };
      }
      const after = await scanner.validRecordAfter(next.offset);
      if (after !== undefined) {
        return { offset: next.offset, reason: `${next.reason}; a valid record follows at byte ${after}, so this is damage inside the log, not a torn write` };
      }
      result.tornTail = { path: file.path, offset: next.offset, bytes: file.size - next.offset, durability: replay.durability };
      if (options.mode === 'open') {
        await file.handle.truncate(next.offset);
        await file.handle.datasync();
        file.size = next.offset;
      }
      break;
    }
    try {
      replay.apply(next);
    } catch (error) {
      if (!(error instanceof LogInconsistency) && !(error instanceof SyntaxError)) throw error;
      return { offset: next.offset, reason: error.message, ...replay.progress() };
    }
    result.records++;
    result.bytes += next.size;
  }
  if (file.kind === 'base' && !replay.ended) {
    return { offset: scanner.position, reason: 'the base ends without its end record', ...replay.progress() };
  }
  if (file.kind === 'segment' && !replay.headerSeen && !last) return { offset: 0, reason: 'segment without a header record' };
  if (last) result.lastDurability = replay.durability;
  return undefined;
}

/** Applies the records of one file, checking that each may follow what came before. */
class FileReplay {
  headerSeen = false;
  ended = false;
  durability: 'fsync' | 'os' | undefined;
  /** Base only: carried events waiting for their stream record. */
  readonly #carried = new Map<string, EventLocation[]>();
  #streams = 0;
  #commands = 0;
  /** Base only: the end of the last record after which no stream is half carried. */
  #safeOffset = 0;

  constructor(
    private readonly file: LogFile,
    private readonly options: ReplayOptions,
    private readonly result: ReplayResult,
  ) {}

  progress(): { baseProgress?: { safeOffset: number; streams: number; commands: number } } {
    return this.file.kind === 'base' ? { baseProgress: { safeOffset: this.#safeOffset, streams: this.#streams, commands: this.#commands } } : {};
  }

  apply(record: ScannedRecord): void {
    const { state } = this.result;
    const location = { file: this.file, offset: record.offset, size: record.size };
    const json = (): unknown => JSON.parse(record.payload.toString('utf8'));
    if (!this.headerSeen) {
      if (record.type !== RecordType.Header) throw new LogInconsistency(`the file starts with record type ${record.type}, not a header`);
      const header = headerMeta(json());
      if (header.format !== FORMAT_VERSION) throw new LogInconsistency(`format ${header.format}; this version reads format ${FORMAT_VERSION}`);
      if (header.storeId !== this.options.storeId) throw new LogInconsistency(`the file belongs to store ${header.storeId}, not to ${this.options.storeId}`);
      if (header.kind !== this.file.kind || header.seq !== this.file.seq) {
        throw new LogInconsistency(`the header says ${header.kind} ${header.seq}, the file name ${this.file.kind} ${this.file.seq}`);
      }
      this.durability = header.durability;
      this.headerSeen = true;
      this.#safeOffset = record.offset + record.size;
      return;
    }
    if (this.ended) throw new LogInconsistency('a record after the end record of the base');
    const inBase = this.file.kind === 'base';
    switch (record.type) {
      case RecordType.Commit:
        if (inBase) break;
        state.applyCommit(commitMeta(splitMeta(record.payload)), location);
        return;
      case RecordType.Compact: {
        if (inBase) break;
        const meta = compactMeta(json());
        state.applyCompact(meta.s, meta.before);
        return;
      }
      case RecordType.Stream: {
        const meta = streamMeta(json());
        state.applyStream(meta.s, meta.head, meta.oldest);
        if (!inBase) return;
        for (const carried of this.#carried.get(meta.s) ?? []) state.applyEvents(meta.s, carried.first, carried.count, carried);
        this.#carried.delete(meta.s);
        const stream = state.stream(meta.s);
        if (stream.indexedEnd !== meta.head + 1)
          throw new LogInconsistency(`stream ${meta.s}: carried events end before version ${stream.indexedEnd}, its head is ${meta.head}`);
        this.#streams++;
        this.#safeOffset = record.offset + record.size;
        return;
      }
      case RecordType.Events: {
        if (!inBase) break;
        const meta = eventsMeta(splitMeta(record.payload));
        const list = this.#carried.get(meta.s) ?? [];
        list.push({ ...location, first: meta.v, count: meta.n });
        this.#carried.set(meta.s, list);
        return;
      }
      case RecordType.Commands: {
        if (!inBase) break;
        for (const [commandId, stream, fingerprint, version, refusal] of commandsMeta(json()).c) {
          state.remember(refusal ? { commandId, stream, fingerprint, version, refusal } : { commandId, stream, fingerprint, version });
          this.#commands++;
        }
        this.#safeOffset = record.offset + record.size;
        return;
      }
      case RecordType.End: {
        if (!inBase) break;
        const meta = endMeta(json());
        if (meta.streams !== this.#streams || meta.commands !== this.#commands || this.#carried.size > 0) {
          throw new LogInconsistency(
            `the base ends with ${meta.streams} streams and ${meta.commands} commands, but holds ${this.#streams} and ${this.#commands}`,
          );
        }
        this.ended = true;
        return;
      }
      case RecordType.Header:
        throw new LogInconsistency('a second header record');
    }
    throw new LogInconsistency(`record type ${record.type} does not belong in a ${this.file.kind}`);
  }
}

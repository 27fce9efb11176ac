import { rename } from 'node:fs/promises';
import type { CommandRecord } from '../eventStore.js';
import { readEvents } from './eventReader.js';
import { fsyncDirectory } from './fsUtil.js';
import { LogFile, createLogFile } from './logFile.js';
import type { EventLocation, LogState } from './logState.js';
import type { Durability, LogWriter } from './logWriter.js';
import { RecordType, encodeJsonRecord, encodeSplitRecord } from './records.js';

export interface RewriteContext {
  logDirectory: string;
  storeId: string;
  durability: Durability;
  state: LogState;
  writer: LogWriter;
  /** The store's open log files in log order; the rewrite replaces the ones it covers. */
  files: LogFile[];
}

/** Events per carried record, and the size at which a record is closed early. */
const CARRY_EVENTS = 1_000;
const CARRY_BYTES = 1024 * 1024;
const COMMANDS_PER_RECORD = 2_000;
const WRITE_BUFFER_BYTES = 1024 * 1024;
/** Locations read at once while carrying (bounds memory on a long stream). */
const READ_LOCATIONS = 512;

interface CutStream {
  name: string;
  head: number;
  locations: EventLocation[];
}

/**
 * Compaction of the log files: everything up to the active segment is rewritten into one base that
 * holds only what is still needed — each stream's head and horizon, its retained events, the
 * remembered command records — while appends go on into a new segment. Then the base replaces the
 * files it covers. Restart time and disk use are thereby bounded by the live data, not by history.
 *
 * 1. Between two writes, the active segment is sealed (made durable) and a new one started; the
 *    state at that cut is captured (heads, locations, command records).
 * 2. The base is written to a temporary file from the sealed files, fsynced, renamed into place.
 * 3. In one synchronous step the index moves to the base; the covered files are unlinked (readers
 *    still holding them finish first).
 *
 * A crash before the rename leaves a temporary file (removed at open); after it, leftovers of the
 * covered files (also removed at open: the base covers them).
 */
export async function rewriteLog(context: RewriteContext): Promise<LogFile> {
  const { state, writer, logDirectory, storeId, durability } = context;
  let cutSeq = 0;
  let streams: CutStream[] = [];
  let commands: CommandRecord[] = [];
  await writer.exclusive(async () => {
    const sealed = writer.active;
    if (durability === 'os') await sealed.handle.datasync();
    const next = await createLogFile(logDirectory, 'segment', sealed.seq + 1, { storeId, durability });
    context.files.push(next);
    writer.active = next;
    cutSeq = sealed.seq;
    streams = [...state.streams.values()]
      .filter((stream) => stream.exists)
      .map((stream) => ({ name: stream.name, head: stream.head, locations: stream.retainedLocations() }));
    commands = [...state.commands.values()];
  });

  const finalPath = LogFile.pathOf(logDirectory, 'base', cutSeq);
  const base = await createLogFile(logDirectory, 'base', cutSeq, { storeId }, `${finalPath}.tmp`);
  const output = new BufferedOutput(base);
  const carried = new Map<string, EventLocation[]>();
  try {
    for (const cut of streams) {
      const stream = state.stream(cut.name);
      // The horizon may have moved on since the cut; never below what the cut had.
      const oldest = Math.min(stream.oldest, cut.head + 1);
      const locations = cut.locations.filter((location) => location.first + location.count > oldest && location.first <= cut.head);
      const list: EventLocation[] = [];
      let texts: string[] = [];
      let first = 0;
      let chunkBytes = 0;
      const flush = async () => {
        if (texts.length === 0) return;
        const record = encodeSplitRecord(RecordType.Events, { s: cut.name, v: first, n: texts.length }, `[${texts.join(',')}]`);
        const offset = await output.append(record);
        list.push({ file: base, offset, size: record.length, first, count: texts.length });
        texts = [];
        chunkBytes = 0;
      };
      for (let i = 0; i < locations.length; i += READ_LOCATIONS) {
        for (const event of await readEvents(locations.slice(i, i + READ_LOCATIONS), oldest, cut.head)) {
          const text = JSON.stringify(event);
          if (texts.length === 0) first = event.version;
          texts.push(text);
          chunkBytes += text.length;
          if (texts.length >= CARRY_EVENTS || chunkBytes >= CARRY_BYTES) await flush();
        }
      }
      await flush();
      // The stream record completes the stream: a base cut short never holds half a stream.
      await output.append(encodeJsonRecord(RecordType.Stream, { s: cut.name, head: cut.head, oldest }));
      carried.set(cut.name, list);
    }
    for (let i = 0; i < commands.length; i += COMMANDS_PER_RECORD) {
      const c = commands
        .slice(i, i + COMMANDS_PER_RECORD)
        .map(({ commandId, stream, fingerprint, version, refusal }) =>
          refusal ? [commandId, stream, fingerprint, version, refusal] : [commandId, stream, fingerprint, version],
        );
      await output.append(encodeJsonRecord(RecordType.Commands, { c }));
    }
    await output.append(encodeJsonRecord(RecordType.End, { streams: streams.length, commands: commands.length }));
    await output.flush();
    await base.handle.sync();
    await rename(base.path, finalPath);
    base.path = finalPath;
    await fsyncDirectory(logDirectory);
  } catch (error) {
    await base.retire().catch(() => {});
    throw error;
  }

  // The switch: synchronous, so no read sees half of it.
  const covered = context.files.filter((file) => file.kind === 'base' || file.seq <= cutSeq);
  for (const cut of streams) {
    state.stream(cut.name).replaceLocations(carried.get(cut.name) ?? [], (location) => location.file.kind === 'segment' && location.file.seq > cutSeq);
  }
  const remaining = context.files.filter((file) => !covered.includes(file));
  context.files.splice(0, context.files.length, base, ...remaining);
  for (const file of covered) await file.retire();
  await fsyncDirectory(logDirectory);
  return base;
}

/** Appends records to a new file through a buffer; answers each record's offset. */
class BufferedOutput {
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(private readonly file: LogFile) {}

  async append(record: Buffer): Promise<number> {
    const offset = this.file.size + this.#pendingBytes;
    this.#pending.push(record);
    this.#pendingBytes += record.length;
    if (this.#pendingBytes >= WRITE_BUFFER_BYTES) await this.flush();
    return offset;
  }

  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const buffers = this.#pending;
    this.#pending = [];
    const bytes = this.#pendingBytes;
    this.#pendingBytes = 0;
    let written = 0;
    const data = Buffer.concat(buffers, bytes);
    while (written < bytes) {
      const { bytesWritten } = await this.file.handle.write(data, written, bytes - written, this.file.size + written);
      written += bytesWritten;
    }
    this.file.size += bytes;
  }
}

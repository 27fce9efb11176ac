import type { CommandRecord, StoredRefusal } from '../eventStore.js';
import type { LogFile } from './logFile.js';

/** Where the events `first … first + count - 1` of a stream are: one record of one log file. */
export interface EventLocation {
  file: LogFile;
  offset: number;
  /** Bytes of the whole record. */
  size: number;
  first: number;
  count: number;
}

/** A record that cannot follow what came before it (a version gap, an unknown stream). */
export class LogInconsistency extends Error {
  override readonly name = 'LogInconsistency';
}

/** What the store knows of one stream: head, horizon, snapshot, and where its retained events are. */
export class StreamIndex {
  /** Whether anything of the stream is durable (a commit, even without events, or a snapshot). */
  exists = false;
  head = 0;
  /** The lowest version still readable (`oldestRetained`). */
  oldest = 1;
  /** The head including appends accepted but not yet durable: the next append must start here. */
  pendingHead = 0;
  /** Settles when the latest accepted append of the stream has (or has not) become durable. */
  lastWrite: Promise<unknown> = Promise.resolve();
  snapshot: { version: number; path: string } | undefined;
  /** Snapshot saves of the stream run one after the other, so the last call is the one kept. */
  snapshotChain: Promise<void> = Promise.resolve();
  #locations: EventLocation[] = [];
  #start = 0;

  constructor(readonly name: string) {}

  get writing(): boolean {
    return this.pendingHead !== this.head;
  }

  addLocation(location: EventLocation): void {
    this.#locations.push(location);
  }

  /** The version after the last indexed event (where carried events must continue). */
  get indexedEnd(): number {
    const last = this.#locations[this.#locations.length - 1];
    return last === undefined || this.#start >= this.#locations.length ? this.oldest : last.first + last.count;
  }

  setHorizon(oldest: number): void {
    if (oldest <= this.oldest) return;
    this.oldest = oldest;
    while (this.#start < this.#locations.length) {
      const location = this.#locations[this.#start]!;
      if (location.first + location.count > oldest) break;
      this.#start++;
    }
    if (this.#start > 1024 && this.#start * 2 > this.#locations.length) {
      this.#locations = this.#locations.slice(this.#start);
      this.#start = 0;
    }
  }

  reset(head: number, oldest: number): void {
    this.head = head;
    this.pendingHead = head;
    this.oldest = oldest;
    this.#locations = [];
    this.#start = 0;
    this.exists = true;
  }

  /** Locations holding versions `from … to` (both within the retained range), in version order. */
  locate(from: number, to: number): EventLocation[] {
    const locations = this.#locations;
    let low = this.#start;
    let high = locations.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const location = locations[mid]!;
      if (location.first + location.count - 1 < from) low = mid + 1;
      else high = mid;
    }
    const found: EventLocation[] = [];
    for (let i = low; i < locations.length && locations[i]!.first <= to; i++) found.push(locations[i]!);
    return found;
  }

  /** Retained locations (a copy), for a rewrite. */
  retainedLocations(): EventLocation[] {
    return this.#locations.slice(this.#start);
  }

  /** After a rewrite: the carried locations, then those still in files the rewrite did not cover. */
  replaceLocations(carried: readonly EventLocation[], keep: (location: EventLocation) => boolean): void {
    const kept = this.#locations.slice(this.#start).filter(keep);
    this.#locations = [...carried.filter((location) => location.first + location.count > this.oldest), ...kept];
    this.#start = 0;
  }
}

export interface CommitMeta {
  /** Stream. */
  s: string;
  /** Version of the first event (head + 1 before the append). */
  v: number;
  /** Number of events. */
  n: number;
  /** Command records: id, fingerprint, version right after the command's events, and for a refused command its refusal. */
  c: Array<[string, string, number] | [string, string, number, StoredRefusal]>;
}

/**
 * The in-memory state of a log: streams and command records. Recovery replays records into it and
 * the live store applies its own writes through the same methods, so both end in the same state.
 */
export class LogState {
  readonly streams = new Map<string, StreamIndex>();
  readonly commands = new Map<string, CommandRecord>();

  constructor(readonly maxCommandRecords: number) {}

  stream(name: string): StreamIndex {
    let stream = this.streams.get(name);
    if (!stream) {
      stream = new StreamIndex(name);
      this.streams.set(name, stream);
    }
    return stream;
  }

  applyCommit(meta: CommitMeta, location: Omit<EventLocation, 'first' | 'count'>): void {
    const stream = this.stream(meta.s);
    if (meta.n > 0) {
      if (meta.v !== stream.head + 1) throw new LogInconsistency(`stream ${meta.s}: events from version ${meta.v} follow version ${stream.head}`);
      stream.addLocation({ ...location, first: meta.v, count: meta.n });
      stream.head = meta.v + meta.n - 1;
    }
    stream.pendingHead = Math.max(stream.pendingHead, stream.head);
    stream.exists = true;
    for (const [commandId, fingerprint, version, refusal] of meta.c) {
      this.remember(refusal ? { commandId, stream: meta.s, fingerprint, version, refusal } : { commandId, stream: meta.s, fingerprint, version });
    }
  }

  applyCompact(name: string, before: number): void {
    const stream = this.streams.get(name);
    if (!stream?.exists) throw new LogInconsistency(`compaction of stream ${name}, which holds nothing`);
    stream.setHorizon(Math.min(before, stream.head + 1));
  }

  applyStream(name: string, head: number, oldest: number): void {
    if (oldest < 1 || oldest > head + 1) throw new LogInconsistency(`stream ${name}: horizon ${oldest} outside 1 … ${head + 1}`);
    this.stream(name).reset(head, oldest);
  }

  applyEvents(name: string, first: number, count: number, location: Omit<EventLocation, 'first' | 'count'>): void {
    const stream = this.streams.get(name);
    if (!stream?.exists) throw new LogInconsistency(`events of stream ${name} before its stream record`);
    if (first !== stream.indexedEnd) throw new LogInconsistency(`stream ${name}: carried events from version ${first}, expected ${stream.indexedEnd}`);
    if (first + count - 1 > stream.head) throw new LogInconsistency(`stream ${name}: carried events beyond its head ${stream.head}`);
    stream.addLocation({ ...location, first, count });
  }

  /** Remembers a command id; the oldest is forgotten beyond `maxCommandRecords`. A repeat moves to the end. */
  remember(record: CommandRecord): void {
    this.commands.delete(record.commandId);
    this.commands.set(record.commandId, record);
    if (this.commands.size > this.maxCommandRecords) {
      const oldest = this.commands.keys().next().value;
      if (oldest !== undefined) this.commands.delete(oldest);
    }
  }
}

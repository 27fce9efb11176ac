import type { Event } from '@lockstep/core';

/** An event as stored: the envelope plus the schema version its `data` was written with. */
export interface StoredEvent extends Event {
  /** Schema version of `data`; omitted means 1. The hub upcasts older data on read. */
  schemaVersion?: number;
}

/**
 * Everything one command produced, appended atomically: its events (possibly none) and the record
 * that makes the command id a duplicate from now on.
 */
export interface Commit {
  commandId: string;
  /** Fingerprint of the command's stream, type and payload (tells a retry from a reused id). */
  fingerprint: string;
  events: StoredEvent[];
}

/** What a store remembers of a command it has appended, for deduplication. */
export interface CommandRecord {
  commandId: string;
  stream: string;
  fingerprint: string;
  /** The stream version right after the command's events. */
  version: number;
}

export interface Snapshot {
  stream: string;
  version: number;
  state: unknown;
}

export interface StreamInfo {
  /** Number of events ever appended (the version of the last one). */
  head: number;
  /** The lowest version `read` can still return; `head + 1` when no event is retained. */
  oldestRetained: number;
}

/** Raised by `append` when the stream's head is not the expected one (another writer got there first). */
export class StoreConflictError extends Error {
  override readonly name = 'StoreConflictError';
  constructor(
    readonly stream: string,
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`stream ${stream} is at version ${actual}, expected ${expected}`);
  }
}

/**
 * Where a hub keeps its logs. Implementations: memory (here), file and PostgreSQL (later).
 *
 * Contract, checked by the testkit's event store conformance suite:
 * - `append` is atomic: all commits of the call are visible or none; it resolves only once the data
 *   is as durable as the store promises, and rejects with `StoreConflictError` when `expectedHead`
 *   is not the stream's head. Versions must run `expectedHead + 1 …` without gaps.
 * - Command ids are unique across the store; `findCommands` finds any id appended within the store's
 *   dedup horizon, also after a restart.
 * - `read` returns events in version order from `from` (inclusive), at most `limit`.
 */
export interface EventStore {
  /** Identity of this log; a new, empty store has a new epoch. */
  readonly epoch: string;
  info(stream: string): Promise<StreamInfo>;
  append(stream: string, expectedHead: number, commits: readonly Commit[]): Promise<void>;
  read(stream: string, from: number, limit: number): Promise<StoredEvent[]>;
  findCommands(commandIds: readonly string[]): Promise<Map<string, CommandRecord>>;
  loadSnapshot(stream: string): Promise<Snapshot | undefined>;
  saveSnapshot(snapshot: Snapshot): Promise<void>;
  /**
   * Lets the store drop events below `before` (a snapshot at `before - 1` or later exists). Stores
   * may keep more; `info().oldestRetained` says what is left.
   */
  compact(stream: string, before: number): Promise<void>;
  /**
   * Optional: calls `listener` whenever a stream's head moves — also for appends by other processes
   * sharing the store (several hubs on one database). A hub uses it to catch up and broadcast events
   * it did not write; stores that only ever have one hub may leave it out. Answers an unsubscribe.
   */
  watch?(listener: (stream: string, head: number) => void): () => void;
  /** Every stream name the store holds. */
  streams(): Promise<string[]>;
  close(): Promise<void>;
}

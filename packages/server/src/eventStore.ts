import type { ErrorCode, Event } from '@lockstep/core';

/** An event as stored: the envelope plus the schema version its `data` was written with. */
export interface StoredEvent extends Event {
  /** Schema version of `data`; omitted means 1. The hub upcasts older data on read. */
  schemaVersion?: number;
}

/**
 * Why a command was refused, as stored: the answer every later delivery of the same command id
 * gets, whichever hub it reaches.
 */
export interface StoredRefusal {
  code: ErrorCode;
  message: string;
  data?: unknown;
}

/**
 * Everything one command produced, appended atomically: its events (possibly none) and the record
 * that makes the command id a duplicate from now on. A refused command is a commit too: no events
 * and its `refusal`, so the refusal is final only if the state it was decided on is still the head.
 */
export interface Commit {
  commandId: string;
  /** Fingerprint of the command's stream, type and payload (tells a retry from a reused id). */
  fingerprint: string;
  events: StoredEvent[];
  /** Set when the command was refused (then `events` is empty). */
  refusal?: StoredRefusal;
}

/** What a store remembers of a command it has appended, for deduplication. */
export interface CommandRecord {
  commandId: string;
  stream: string;
  fingerprint: string;
  /** The stream version right after the command's events (for a refusal: the head it was refused at). */
  version: number;
  /** Set when the command was refused. */
  refusal?: StoredRefusal;
}

export interface Snapshot {
  stream: string;
  version: number;
  state: unknown;
  /**
   * `JSON.stringify(state)`, when the hub has already written it (it measures every snapshot):
   * a store that keeps JSON text uses it rather than serializing the state a second time. Absent
   * from what `loadSnapshot` returns.
   */
  json?: string;
}

/** The snapshot's state as JSON text: the hub's own serialization when it passed one. */
export function snapshotJson(snapshot: Snapshot): string {
  return snapshot.json ?? JSON.stringify(snapshot.state) ?? 'null';
}

export interface StreamInfo {
  /** Number of events ever appended (the version of the last one). */
  head: number;
  /** The lowest version `read` can still return; `head + 1` when no event is retained. */
  oldestRetained: number;
}

/**
 * Where hubs sharing a store say which lease holders (client ids) are connected to them, and when a
 * holder was last seen. Entries of a hub that stopped sending heartbeats (a crashed process) stop
 * counting after `ttlMs`. `now` is the calling hub's clock, for registries without one of their own (a
 * database uses its own time, so the hubs' clocks never meet).
 */
export interface PresenceRegistry {
  /** `hubId` has a connection of `holder` now (its first; also counts as a heartbeat of `hubId`). */
  enter(hubId: string, holder: string, now: number): Promise<void>;
  /** `hubId` has no connection of `holder` any more: the holder was last seen there now. */
  leave(hubId: string, holder: string, now?: number): Promise<void>;
  /** `hubId` is alive: keeps its entries counting for another `ttlMs`. */
  heartbeat(hubId: string, now: number): Promise<void>;
  /** Whether a hub other than `hubId`, alive within the last `ttlMs`, has `holder` connected. */
  isPresentElsewhere(hubId: string, holder: string, ttlMs: number, now: number): Promise<boolean>;
  /**
   * How long ago (ms, on the registry's clock) `holder` was last seen on any hub: 0 while a hub other
   * than `hubId` that heartbeat within `ttlMs` has it connected; the time since a hub left it (`hubId`
   * included), or since a silent hub that had it connected stopped counting (`ttlMs` after its last
   * heartbeat); `undefined` when the registry has no record of it. Hubs expire a holder's leases
   * from this, so every hub counts the grace period from the same moment.
   *
   * Optional, for registries written before it: without it a hub times the grace period from its own
   * view (when the holder left it, or when it learned of the lease), which across hubs can expire a
   * holder that only moved or reconnected.
   */
  sinceLastSeen?(hubId: string, holder: string, ttlMs: number, now: number): Promise<number | undefined>;
  /** `hubId` shut down: its entries are gone at once; its holders were last seen there now. */
  forget(hubId: string, now?: number): Promise<void>;
}

/**
 * Raised by `append` when the stream's head is not the expected one, or when one of the commits'
 * command ids is already recorded: another writer got there first. The writer catches up, looks
 * its commands up again and decides anew.
 */
export class StoreConflictError extends Error {
  override readonly name = 'StoreConflictError';
  constructor(
    readonly stream: string,
    readonly expected: number,
    readonly actual: number,
    /** Set when the conflict is a command id already recorded, not the head. */
    readonly commandId?: string,
  ) {
    super(
      commandId === undefined
        ? `stream ${stream} is at version ${actual}, expected ${expected}`
        : `command id ${commandId} is already recorded (appending to ${stream} at version ${expected})`,
    );
  }
}

/**
 * Where a hub keeps its logs. Implementations: memory (here), file and PostgreSQL (later).
 *
 * Contract, checked by the testkit's event store conformance suite:
 * - `append` is atomic: all commits of the call are visible or none; it resolves only once the data
 *   is as durable as the store promises, and rejects with `StoreConflictError` when `expectedHead`
 *   is not the stream's head or a commit's command id is already recorded — also for a call whose
 *   commits are all refusals (no events). Versions must run `expectedHead + 1 …` without gaps.
 *   A rejection with a `LockstepError` is a deliberate refusal that wrote nothing (a full memory
 *   store: `LIMIT_EXCEEDED`): the hub answers the batch's new commands with it.
 * - Command ids are unique across the store; `findCommands` finds any id appended within the store's
 *   dedup horizon, also after a restart, with its refusal if it was refused.
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
  /**
   * Optional: which lease holders are connected to which hub, shared by every hub on the store, so
   * a hub does not expire the leases of a client connected to another one. Stores that only ever
   * have one hub may leave it out (each hub then knows only its own connections).
   */
  readonly presence?: PresenceRegistry;
  close(): Promise<void>;
}

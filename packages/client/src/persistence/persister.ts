import type { AnyDomain, Clock, TimerHandle } from '@lockstep/core';
import type { PendingCommand, SyncedStream } from '../syncedStream.js';
import type { ClientStorage } from './clientStorage.js';
import { PersistenceError } from './PersistenceError.js';
import { CLIENT_KEY, PERSISTED_FORMAT, STREAM_KEY_PREFIX, parseRecords, type PersistedCommand, type PersistedStream } from './persistedRecords.js';

/**
 * Where a client's state lives: `memory` (no storage given), `restoring` (reading the storage at
 * start), `persistent` (written to the storage), `failed` (the storage refused a read or a write:
 * the client goes on in memory, the error is `lastError`, and later changes try again).
 */
export type StorageStatus = 'memory' | 'restoring' | 'persistent' | 'failed';

/** Default delay between a change and its write: changes within it are written together. */
export const PERSIST_DEFAULTS = { flushDelayMs: 50 } as const;

export interface PersisterHost {
  readonly clock: Clock;
  readonly flushDelayMs: number;
  storageStatus(status: StorageStatus, error: PersistenceError | undefined): void;
}

const ignore = (): void => {};

/**
 * Keeps a client's streams in a {@link ClientStorage}: restores them at start, then writes what
 * changed, batched — a change only marks its stream (O(1)); the records are built and written a
 * `flushDelayMs` later, one write at a time, so applying the hub's events never waits on storage.
 * @internal
 */
export class Persister {
  readonly #storage: ClientStorage;
  readonly #host: PersisterHost;
  /** Records loaded at start, until their stream is opened (each restored once). */
  #loaded: Map<string, PersistedStream> | undefined;
  #loadedClientId: string | undefined;
  readonly #tracked = new Map<SyncedStream<AnyDomain>, () => void>();
  /** The hub log each stream's confirmed state belongs to (restored, then the hub's at each hello). */
  readonly #epochs = new Map<string, string>();
  #hubEpoch: string | undefined;
  /** What was last written per key, to skip writes that would change nothing. */
  readonly #written = new Map<string, string>();
  readonly #dirty = new Set<SyncedStream<AnyDomain>>();
  readonly #extra = new Map<string, unknown>();
  #timer: TimerHandle | undefined;
  #writing: Promise<void> | undefined;
  #again = false;
  /** Off for good: the storage could not be opened, or the client closed. */
  #off = false;
  #failed = false;
  /** Why the storage could not be opened at start (`#off` for that reason, not closed). */
  #openError: PersistenceError | undefined;
  /** A `reopen` is under way. */
  #reopening = false;
  #closed = false;

  constructor(storage: ClientStorage, host: PersisterHost) {
    this.#storage = storage;
    this.#host = host;
  }

  #loading: Promise<string | undefined> | undefined;

  /** Reads the storage; resolves with the stored client id (if any), never rejects. */
  load(): Promise<string | undefined> {
    this.#loading ??= this.#load();
    return this.#loading;
  }

  async #load(): Promise<string | undefined> {
    this.#host.storageStatus('restoring', undefined);
    try {
      const { records, problems } = await this.#storage.load();
      const loaded = parseRecords(records);
      this.#loaded = loaded.streams;
      this.#loadedClientId = loaded.clientId;
      const problem = [...problems.map((p) => PersistenceError.from(p)), ...loaded.problems][0];
      this.#host.storageStatus('persistent', problem);
      for (const stream of this.#tracked.keys()) this.#restore(stream);
      return loaded.clientId;
    } catch (error) {
      // Not even opened (locked by another tab, no permission): memory only, unless `reopen` succeeds.
      this.#off = true;
      this.#failed = true;
      for (const unsubscribe of this.#tracked.values()) unsubscribe();
      this.#tracked.clear();
      this.#openError = PersistenceError.from(error);
      this.#host.storageStatus('failed', this.#openError);
      return undefined;
    }
  }

  /**
   * Tries again to open a storage another tab held at start (LOCKED), now that the client runs:
   * `streams` are the client's open streams — each gets the stored commands it does not already hold
   * (by id) ahead of its own, and keeps its live state — and are watched from now on. `locked`: still
   * held; `none`: not applicable (it opened at start, failed for another reason, or was closed).
   */
  async reopen(streams: readonly SyncedStream<AnyDomain>[]): Promise<'opened' | 'locked' | 'none'> {
    if (this.#closed || !this.#off || this.#openError?.code !== 'LOCKED' || this.#reopening) return 'none';
    this.#reopening = true;
    try {
      const { records, problems } = await this.#storage.load();
      const loaded = parseRecords(records);
      if (this.#closed) {
        // Closed meanwhile.
        await this.#storage.close().catch(ignore);
        return 'none';
      }
      this.#off = false;
      this.#failed = false;
      this.#openError = undefined;
      this.#loaded = loaded.streams;
      this.#loadedClientId = loaded.clientId;
      this.#loading = Promise.resolve(loaded.clientId);
      const problem = [...problems.map((p) => PersistenceError.from(p)), ...loaded.problems][0];
      this.#host.storageStatus('persistent', problem);
      for (const stream of streams) {
        if (stream.closed) continue;
        this.track(stream);
        // Written now: the records become this client's, with the commands it merged.
        this.#dirty.add(stream);
      }
      this.#schedule();
      return 'opened';
    } catch (error) {
      const failure = PersistenceError.from(error);
      if (failure.code === 'LOCKED') return 'locked';
      this.#openError = failure;
      this.#host.storageStatus('failed', failure);
      return 'none';
    } finally {
      this.#reopening = false;
    }
  }

  /** The client's id, stored with the next write unless it is already the stored one. */
  keepClientId(clientId: string): void {
    if (this.#off || clientId === this.#loadedClientId) return;
    this.#extra.set(CLIENT_KEY, { format: PERSISTED_FORMAT, clientId });
    this.#schedule();
  }

  /** A stream was opened: restore it (once the storage is read) and watch it for changes. */
  track(stream: SyncedStream<AnyDomain>): void {
    if (this.#off || this.#tracked.has(stream)) return;
    this.#tracked.set(
      stream,
      stream.subscribe(() => {
        this.#dirty.add(stream);
        this.#schedule();
      }),
    );
    if (this.#hubEpoch !== undefined) this.#epochs.set(stream.name, this.#hubEpoch);
    if (this.#loaded) this.#restore(stream);
  }

  /**
   * A stream was closed: its last record is written, then it is no longer watched. Opened again in
   * this run, it starts from that record, as after a restart.
   */
  untrack(stream: SyncedStream<AnyDomain>): void {
    const unsubscribe = this.#tracked.get(stream);
    if (!unsubscribe) return;
    unsubscribe();
    this.#tracked.delete(stream);
    this.#dirty.delete(stream);
    if (!this.#loaded) return; // not restored yet: what is stored is still the truth
    const record = this.#record(stream);
    this.#loaded.set(stream.name, record);
    const key = STREAM_KEY_PREFIX + stream.name;
    if (this.#written.get(key) !== signature(record)) {
      this.#extra.set(key, record);
      this.#schedule();
    }
  }

  /**
   * The hub said hello with `epoch`. A stream restored from another log is reset (it starts over
   * from the hub's snapshot; pending commands are kept and re-sent), then every stream's state is
   * this log's.
   */
  onHello(epoch: string): void {
    this.#hubEpoch = epoch;
    for (const stream of this.#tracked.keys()) {
      const stored = this.#epochs.get(stream.name);
      if (stored !== undefined && stored !== epoch && stream.version > 0) stream.reset();
      this.#epochs.set(stream.name, epoch);
    }
  }

  /** Writes everything changed so far; resolves once it is stored (or the write failed). */
  async flush(): Promise<void> {
    if (this.#timer !== undefined) this.#host.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#writing) await this.#writing;
    await this.#write();
  }

  /** Writes the last records of every stream, then closes the storage. Nothing is watched after. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#off) return;
    if (!this.#loaded) {
      // Closed before the storage was read: the streams hold nothing of it, and must not replace it.
      this.#off = true;
      for (const unsubscribe of this.#tracked.values()) unsubscribe();
      this.#tracked.clear();
      await this.#loading;
      await this.#storage.close().catch(ignore);
      return;
    }
    for (const [stream, unsubscribe] of this.#tracked) {
      this.#dirty.add(stream);
      unsubscribe();
    }
    this.#tracked.clear();
    // Records are taken now, before the client rejects what was pending: those commands stay
    // stored and are sent at the next start.
    const changes = this.#collect();
    this.#off = true;
    if (this.#timer !== undefined) this.#host.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#writing) await this.#writing;
    try {
      if (changes.size > 0) await this.#storage.save(changes);
    } catch (error) {
      this.#host.storageStatus('failed', PersistenceError.from(error));
    }
    await this.#storage.close().catch(ignore);
  }

  #restore(stream: SyncedStream<AnyDomain>): void {
    const record = this.#loaded?.get(stream.name);
    if (!record) return;
    this.#loaded!.delete(stream.name);
    const sameLog = record.epoch !== undefined && (this.#hubEpoch === undefined || this.#hubEpoch === record.epoch);
    const confirmed = sameLog && record.version > 0 ? { state: record.state, version: record.version } : undefined;
    if (confirmed && this.#hubEpoch === undefined) this.#epochs.set(stream.name, record.epoch!);
    // Written as it was loaded: the same record need not be written again.
    this.#written.set(STREAM_KEY_PREFIX + stream.name, signature(record));
    stream.restore(
      confirmed,
      record.pending.map((command) => restoredCommand(command, stream.name)),
    );
  }

  #schedule(): void {
    if (this.#off || this.#timer !== undefined) return;
    if (this.#writing) {
      this.#again = true;
      return;
    }
    this.#timer = this.#host.clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#write();
    }, this.#host.flushDelayMs);
  }

  #write(): Promise<void> {
    if (this.#off || !this.#loaded) return Promise.resolve();
    const changes = this.#collect();
    if (changes.size === 0) return Promise.resolve();
    const writing = this.#storage.save(changes).then(
      () => {
        for (const [key, value] of changes) {
          if (value === undefined) this.#written.delete(key);
          else if (key.startsWith(STREAM_KEY_PREFIX)) this.#written.set(key, signature(value as PersistedStream));
        }
        if (this.#failed) {
          this.#failed = false;
          this.#host.storageStatus('persistent', undefined);
        }
      },
      (error: unknown) => {
        // Tried again with the next change (quota freed, permission given back).
        const open = new Set<string>();
        for (const stream of this.#tracked.keys()) {
          open.add(STREAM_KEY_PREFIX + stream.name);
          if (changes.has(STREAM_KEY_PREFIX + stream.name)) this.#dirty.add(stream);
        }
        for (const [key, value] of changes) if (!open.has(key) && !this.#extra.has(key)) this.#extra.set(key, value);
        this.#failed = true;
        this.#host.storageStatus('failed', PersistenceError.from(error));
      },
    );
    this.#writing = writing;
    void writing.then(() => {
      this.#writing = undefined;
      if (this.#again) {
        this.#again = false;
        this.#schedule();
      }
    });
    return writing;
  }

  /** The records of the streams changed since the last write, built now (and skipped if unchanged). */
  #collect(): Map<string, unknown> {
    const changes = new Map<string, unknown>(this.#extra);
    this.#extra.clear();
    for (const stream of this.#dirty) {
      const record = this.#record(stream);
      const key = STREAM_KEY_PREFIX + stream.name;
      if (this.#written.get(key) !== signature(record)) changes.set(key, record);
    }
    this.#dirty.clear();
    return changes;
  }

  #record(stream: SyncedStream<AnyDomain>): PersistedStream {
    const { confirmed } = stream;
    const { version } = confirmed;
    const epoch = this.#epochs.get(stream.name);
    const record: PersistedStream = { format: PERSISTED_FORMAT, stream: stream.name, version: 0, pending: [], savedAt: this.#host.clock.now() };
    if (version > 0 && epoch !== undefined) {
      record.epoch = epoch;
      record.version = version;
      record.state = confirmed.state;
    }
    for (const command of stream.pendingCommands) record.pending.push(persistedCommand(command));
    return record;
  }
}

function persistedCommand(command: PendingCommand): PersistedCommand {
  const stored: PersistedCommand = {
    id: command.id,
    type: command.type,
    payload: command.payload,
    time: command.time,
    explicitAck: command.explicitAck,
    applied: command.applied,
  };
  if (command.expectedVersion !== undefined) stored.expectedVersion = command.expectedVersion;
  if (command.ack) stored.ackVersion = command.ack.version;
  return stored;
}

/** A command of an earlier run: nobody awaits its promise any more; its outcome shows in the stream. */
function restoredCommand(stored: PersistedCommand, stream: string): PendingCommand {
  return {
    id: stored.id,
    type: stored.type,
    payload: stored.payload,
    expectedVersion: stored.expectedVersion,
    time: stored.time,
    explicitAck: stored.explicitAck,
    sent: false,
    ack: stored.ackVersion === undefined ? undefined : { id: stored.id, stream, version: stored.ackVersion },
    applied: stored.applied,
    resolve: ignore,
    reject: ignore,
  };
}

/** What decides whether a record must be written again: its log, version and pending commands. */
function signature(record: PersistedStream): string {
  let text = `${record.epoch ?? ''}@${record.version}`;
  for (const command of record.pending) text += `|${command.id}:${command.ackVersion ?? ''}:${command.applied ? 1 : 0}`;
  return text;
}

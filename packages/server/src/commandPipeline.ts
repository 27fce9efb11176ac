import { DomainRejection, LockstepError, jsonLength, createCommandBatch, fingerprint, type Event, type protocol } from '@lockstep/core';
import { StoreConflictError, type Commit, type CommandRecord, type StoredEvent, type StoredRefusal } from './eventStore.js';
import type { StreamHost } from './streamHost.js';

/**
 * A stream's command pipeline: commands are serialized per stream and processed in batches — every
 * command queued while the previous batch was being appended is decided in the next batch, whose
 * commits are appended with one store call (group commit) and broadcast as one `events`
 * notification. Per batch: dedup by command id, `expectedVersion`, the application's
 * `checkCommand`, decide (payload parsed, events evolved on one draft — `createCommandBatch`), the
 * state budget, append, then events out before the answers, then the snapshot cadence.
 * Functions of the {@link StreamHost}, which holds the queue and the state; loading and reading a
 * stream live there.
 */

/** A command that passed envelope and payload validation, waiting for its stream's pipeline (not exported from the package). */
export interface QueuedCommand {
  id: string;
  type: string;
  /** As sent; validated by the domain's schema in the pipeline. */
  payload: unknown;
  expectedVersion: number | undefined;
  clientId: string | undefined;
  /**
   * The command's answer. `inBroadcast`: its events went out in the live broadcast just made (so a
   * subscriber that received it holds them all); false for a command that produced no events and
   * for a duplicate.
   */
  resolve(result: protocol.CommandResult, inBroadcast: boolean): void;
  reject(error: LockstepError): void;
}

/** A command as the hub's `checkCommand` hook sees it: its payload validated by the domain's schema. */
export interface CommandCheck {
  readonly id: string;
  /** `<domain>/<key>`. */
  readonly stream: string;
  readonly domain: string;
  readonly key: string;
  readonly type: string;
  /** As the domain's schema parsed it. */
  readonly payload: unknown;
  /** The client that sent it, when known. */
  readonly clientId: string | undefined;
}

/** Appends retried after losing a race to another hub, before the batch fails with UNAVAILABLE. */
const MAX_CONFLICT_RETRIES = 8;

/**
 * States up to this many characters of JSON text are snapshotted every `snapshotEvery` events, as
 * always (such a snapshot costs a few milliseconds); larger ones wait for events of their own size
 * past it (`snapshotDue`).
 */
const SNAPSHOT_FREE_BYTES = 1024 * 1024;

/** Starts the host's drain loop unless it runs already. */
export function startDraining(host: StreamHost): void {
  if (host.draining) return;
  host.draining = true;
  host.idle = drain(host);
}

/**
 * Runs until nothing is queued: first brings the state in line with the store (load it, or catch up
 * when stale or told to), then takes everything queued as the next batch.
 */
async function drain(host: StreamHost): Promise<void> {
  while (host.queue.length > 0 || host.refreshRequested) {
    // First bring the state in line with the store: load it, or catch up when stale or told to.
    if (!host.loaded || host.stale || host.refreshRequested) {
      host.refreshRequested = false;
      const before = host.version;
      const synced = await host.sync();
      // Told of a head beyond what the load or catch-up read (the notification came while it was
      // reading): read again, as long as reading gets somewhere.
      if (synced && host.toldHead > host.version && host.version > before) host.refreshRequested = true;
      if (!synced) {
        // The store is unreachable: answer what waits now; the next command tries again.
        const failure = new LockstepError('UNAVAILABLE', `stream ${host.name} is unavailable; retry the command`);
        for (const queued of host.queue.splice(0)) queued.reject(failure);
        break;
      }
      continue;
    }
    const batch = host.queue;
    host.queue = [];
    try {
      await processBatch(host, batch, 0);
    } catch (error) {
      host.options.onError(error, `processing commands on ${host.name}`);
      const failure = new LockstepError('UNAVAILABLE', `stream ${host.name} is unavailable; retry the command`);
      for (const queued of batch) queued.reject(failure);
      // The store may or may not hold the batch: catch up with whatever it holds before going on.
      host.stale = true;
    }
  }
  host.draining = false;
}

async function processBatch(host: StreamHost, batch: QueuedCommand[], attempt: number): Promise<void> {
  const { store, now } = host.options;
  const { name, domain } = host;
  const known = await store.findCommands(batch.map((queued) => queued.id));
  // One draft for the whole batch: a large collection is copied once, not once per command.
  const decided = createCommandBatch(domain, host.state, name);
  const admit = budget(host);
  let version = host.version;
  const time = now();
  const commits: Commit[] = [];
  const events: Event[] = [];
  const outcomes: Array<() => void> = [];
  // One function for the batch, not a closure per command (it reads `version` when called).
  const refuse = (queued: QueuedCommand, print: string, error: LockstepError) => {
    outcomes.push(() => queued.reject(error));
    // A payload that does not fit its schema is refused whatever the state: nothing to record.
    if (error.code === 'INVALID_PARAMS') return;
    // Any other refusal depends on the state it was decided on: it is recorded with the batch,
    // so it is final only if that state is still the head, and every later delivery of the id —
    // to this hub or another — gets the same answer instead of being decided again.
    const refusal: StoredRefusal = { code: error.code, message: error.message };
    if (error.data !== undefined) refusal.data = error.data;
    commits.push({ commandId: queued.id, fingerprint: print, events: [], refusal });
    known.set(queued.id, { commandId: queued.id, stream: name, fingerprint: print, version, refusal });
  };

  for (const queued of batch) {
    const print = fingerprint([name, queued.type, queued.payload]);
    const previous: CommandRecord | undefined = known.get(queued.id);
    if (previous) {
      outcomes.push(answerDuplicate(host, queued, previous, print));
      continue;
    }
    if (queued.expectedVersion !== undefined && queued.expectedVersion !== version) {
      refuse(
        queued,
        print,
        new LockstepError('VERSION_CONFLICT', `stream ${name} is at version ${version}, not ${queued.expectedVersion}`, {
          currentVersion: version,
        }),
      );
      continue;
    }
    if (host.options.check) {
      const refusal = await check(host, queued, host.options.check);
      if (refusal) {
        // A rejection is final, like the domain's; anything else (what the check reads could not
        // be loaded, a bug in it) is not recorded: a retry of the id is checked again.
        if (refusal.code === 'COMMAND_REJECTED' || refusal.code === 'INVALID_PARAMS') refuse(queued, print, refusal);
        else outcomes.push(() => queued.reject(refusal));
        continue;
      }
    }
    let produced: Event[];
    try {
      produced = decided.apply(queued, { now: time, version, clientId: queued.clientId, admit: admit?.check }) as Event[];
    } catch (error) {
      const failure = error instanceof DomainRejection || error instanceof LockstepError ? LockstepError.from(error) : undefined;
      if (!failure) host.options.onError(error, `deciding ${queued.type} on ${name}`);
      refuse(queued, print, failure ?? new LockstepError('INTERNAL_ERROR', `the ${domain.name} domain failed on ${queued.type}`));
      continue;
    }
    version += produced.length;
    commits.push({ commandId: queued.id, fingerprint: print, events: produced.map((e) => toStored(host, e)) });
    for (const event of produced) events.push(event);
    const record: CommandRecord = { commandId: queued.id, stream: name, fingerprint: print, version };
    known.set(queued.id, record);
    const ack: protocol.CommandResult = { id: queued.id, stream: name, version };
    const inBroadcast = produced.length > 0;
    outcomes.push(() => queued.resolve(ack, inBroadcast));
  }

  if (commits.length > 0) {
    try {
      await store.append(name, host.version, commits);
    } catch (error) {
      if (error instanceof LockstepError) {
        // The store refused on purpose and wrote nothing (the memory store at its bound answers
        // LIMIT_EXCEEDED): the commands it was to record get its answer; the rest (duplicates,
        // invalid payloads) get UNAVAILABLE, as after any failed append, and a retry answers them.
        const refused = new Set(commits.map((commit) => commit.commandId));
        const retry = new LockstepError('UNAVAILABLE', `stream ${name} is unavailable; retry the command`);
        for (const queued of batch) queued.reject(refused.has(queued.id) ? error : retry);
        return;
      }
      if (!(error instanceof StoreConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      // Another hub appended first: take its events, then decide the whole batch again.
      await host.catchUpFromStore();
      return processBatch(host, batch, attempt + 1);
    }
  }
  host.state = decided.finish();
  host.version = version;
  if (admit) host.stateBytes = admit.bytes();
  // Events go out before the acks: on an ordered transport a client never holds an ack for a
  // version whose events it has not seen, unless some were lost (a gap it must resync).
  if (events.length > 0) host.broadcast(events);
  for (const outcome of outcomes) outcome();
  if (events.length > 0) {
    host.options.onCommitted(host, events);
    host.sinceSnapshotBytes += admit ? admit.added() : eventBytes(events);
    if (snapshotDue(host)) await snapshot(host);
  }
}

/**
 * Every `snapshotEvery` events; for a state of more than {@link SNAPSHOT_FREE_BYTES}, not before the
 * data of the events since the last snapshot add up to the state's size past that. A snapshot writes
 * the whole state (and the budget measures it): so its cost, spread over the events it covers, stays
 * the same per event whatever the size of the state, and a load replays no more events than the
 * snapshot's own size in JSON text.
 */
function snapshotDue(host: StreamHost): boolean {
  if (host.version - host.lastSnapshot < host.options.snapshotEvery) return false;
  return host.sinceSnapshotBytes >= host.snapshotBytes - SNAPSHOT_FREE_BYTES;
}

/**
 * The state budget's check for one batch: a command is admitted while the state's estimated size
 * stays within `maxStateBytes`; past it, the state is measured, and the command refused if the
 * measure is past it too. So the budget costs a `JSON.stringify` of each event's data, plus one of
 * the state when the estimate (which only grows between measures) reaches the budget.
 */
function budget(host: StreamHost): { check: (events: readonly Event[], measure: () => number) => void; bytes: () => number; added: () => number } | undefined {
  const limit = host.options.maxStateBytes;
  if (limit === false) return undefined;
  let estimate = (host.stateBytes ??= jsonLength(host.state));
  /** The event bytes of the commands admitted (for the snapshot cadence). */
  let total = 0;
  return {
    check: (events, measure) => {
      const added = eventBytes(events);
      if (estimate + added <= limit) {
        estimate += added;
        total += added;
        return;
      }
      const measured = measure();
      if (measured > limit) {
        throw new LockstepError('COMMAND_REJECTED', `stream ${host.name} would hold ${measured} characters of state, past its budget of ${limit}`, {
          reason: 'stateBudgetExceeded',
          maxStateBytes: limit,
          stateBytes: measured,
        });
      }
      estimate = measured;
      total += added;
    },
    bytes: () => estimate,
    added: () => total,
  };
}

/** The application's check of a new command (its payload validated first): its refusal, if any. */
async function check(host: StreamHost, queued: QueuedCommand, hook: (command: CommandCheck) => void | Promise<void>): Promise<LockstepError | undefined> {
  let payload: unknown;
  try {
    payload = (host.domain.parseCommand(queued.type, queued.payload) as { payload: unknown }).payload;
  } catch (error) {
    return LockstepError.from(error);
  }
  try {
    const { id, type, clientId } = queued;
    await hook({ id, stream: host.name, domain: host.domain.name, key: host.key, type, payload, clientId });
    return undefined;
  } catch (error) {
    if (error instanceof DomainRejection || error instanceof LockstepError) return LockstepError.from(error);
    host.options.onError(error, `checking ${queued.type} on ${host.name}`);
    return new LockstepError('INTERNAL_ERROR', `the check of ${queued.type} on ${host.name} failed`);
  }
}

/** The answer to a command id the store (or this batch) already holds: the same as the first time. */
function answerDuplicate(host: StreamHost, queued: QueuedCommand, previous: CommandRecord, print: string): () => void {
  if (previous.stream !== host.name || previous.fingerprint !== print) {
    const error = new LockstepError('COMMAND_ID_CONFLICT', `command id ${queued.id} was already used for a different command`, {
      id: queued.id,
    });
    return () => queued.reject(error);
  }
  const { refusal } = previous;
  if (refusal) {
    const error = new LockstepError(refusal.code, refusal.message, refusal.data);
    return () => queued.reject(error);
  }
  const ack: protocol.CommandResult = { id: queued.id, stream: host.name, version: previous.version, duplicate: true };
  return () => queued.resolve(ack, false);
}

function toStored(host: StreamHost, event: Event): StoredEvent {
  const schemaVersion = host.domain.eventVersion(event.type);
  if (schemaVersion === 1) return event;
  // Literals, not `{ ...event, schemaVersion }`: once that spread has seen a few shapes, V8 gives
  // every copy a hidden class of its own (≈ 280 B more per event a memory store keeps). Same key order.
  const { version, type, data, time, commandId } = event;
  return commandId === undefined ? { version, type, data, time, schemaVersion } : { version, type, data, time, commandId, schemaVersion };
}

async function snapshot(host: StreamHost): Promise<void> {
  const { store, retainEvents } = host.options;
  const version = host.version;
  // The snapshot cadence needs the state's size; and the budget's estimate only grows between
  // measures: measured again with each snapshot (as costly).
  const json = JSON.stringify(host.state) ?? 'null';
  const bytes = json.length;
  if (host.options.maxStateBytes !== false) host.stateBytes = bytes;
  try {
    // The text goes to the store with the state: a 35 MB board is serialized once per snapshot, not twice.
    await store.saveSnapshot({ stream: host.name, version, state: host.state, json });
    host.lastSnapshot = version;
    host.snapshotBytes = bytes;
    host.sinceSnapshotBytes = 0;
    await store.compact(host.name, version - retainEvents + 1);
  } catch (error) {
    host.options.onError(error, `snapshotting ${host.name}`);
  }
}

/** The length of the JSON text of the events' data (what the state budget and the snapshot cadence count). */
export function eventBytes(events: readonly Event[]): number {
  let bytes = 0;
  for (const event of events) bytes += jsonLength(event.data);
  return bytes;
}

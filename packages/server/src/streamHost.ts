import {
  DomainRejection,
  LockstepError,
  jsonLength,
  frameSize,
  createCommandBatch,
  fingerprint,
  type AnyDomain,
  type Codec,
  type Frame,
  type Event,
  type protocol,
} from '@lockstep/core';
import { StoreConflictError, type Commit, type CommandRecord, type EventStore, type StoredEvent, type StoredRefusal } from './eventStore.js';

/** A command that passed envelope and payload validation, waiting for its stream's pipeline. */
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

/** Someone who receives a stream's events: a connection's subscription, seen from the stream. */
export interface StreamSubscriber {
  /** The last version this subscriber has been sent. Live subscribers are always at the head. */
  cursor: number;
  live: boolean;
  /** Sends an `events` notification, encoded once per codec and shared by every subscriber. */
  deliver(frameFor: (codec: Codec) => Frame): void;
  /** The stream was reloaded under this subscriber (it can no longer follow by version): resync it. */
  reset(reason: string): void;
}

export interface StreamHostOptions {
  store: EventStore;
  now: () => number;
  snapshotEvery: number;
  retainEvents: number;
  /** The largest events frame built for a live broadcast: larger batches go out in parts, split between commands. */
  pageBytes: number;
  /** The state budget (`HubOptions.maxStateBytes`), or false. */
  maxStateBytes: number | false;
  onError(error: unknown, context: string): void;
  /** Called after each committed batch with the events, for leases and observers. */
  onCommitted(host: StreamHost, events: readonly Event[]): void;
  /** The application's check of each new command before it is decided (the hub's `checkCommand`). */
  check?: (command: CommandCheck) => void | Promise<void>;
}

const LOAD_PAGE = 10_000;
/** Loads started over because the store compacted under them, before the load fails. */
const MAX_LOAD_RETRIES = 3;
/** Appends retried after losing a race to another hub, before the batch fails with UNAVAILABLE. */
const MAX_CONFLICT_RETRIES = 8;

/**
 * One loaded stream: its state and version, its subscribers, and its command pipeline.
 * Commands are serialized per stream and processed in batches: every command queued while the
 * previous batch was being appended is decided in the next batch, whose commits are appended with
 * one store call (group commit) and broadcast as one `events` notification.
 */
export class StreamHost {
  state: unknown;
  version = 0;
  readonly subscribers = new Set<StreamSubscriber>();
  #loaded = false;
  #loading: Promise<void> | undefined;
  /** The store may hold events this host has not applied (a failed append, a store outage). */
  #stale = false;
  #queue: QueuedCommand[] = [];
  #draining = false;
  #idle: Promise<void> = Promise.resolve();
  #lastSnapshot = 0;
  #refreshRequested = false;
  /** The highest head the store has told of (`refresh`), which a load in progress may not have read. */
  #toldHead = 0;
  /**
   * The length of the state's JSON text when last measured plus that of every event's data since: what
   * the state budget checks first, measuring again only when this passes it. Undefined: not measured.
   */
  #stateBytes: number | undefined;
  /** The length of the state's JSON text at the last snapshot this host took (0: none since loading). */
  #snapshotBytes = 0;
  /** The length of the JSON text of the data of every event committed since that snapshot. */
  #sinceSnapshotBytes = 0;

  constructor(
    readonly name: string,
    readonly key: string,
    readonly domain: AnyDomain,
    private readonly options: StreamHostOptions,
  ) {
    this.state = domain.initialState();
    void this.ready.catch(() => {});
  }

  /**
   * Resolves once the stream is loaded from its store. A failed load (store unreachable) rejects
   * with UNAVAILABLE and is tried again by the next caller, so a stream recovers with its store.
   */
  get ready(): Promise<void> {
    if (this.#loaded) return Promise.resolve();
    this.#loading ??= this.#load().then(
      () => {
        this.#loading = undefined;
      },
      (error: unknown) => {
        this.#loading = undefined;
        this.options.onError(error, `loading ${this.name}`);
        throw new LockstepError('UNAVAILABLE', `stream ${this.name} could not be loaded from its store; retry`);
      },
    );
    return this.#loading;
  }

  async #load(attempt = 0): Promise<void> {
    const { store } = this.options;
    const snapshot = await store.loadSnapshot(this.name);
    let state = snapshot ? snapshot.state : this.domain.initialState();
    let version = snapshot ? snapshot.version : 0;
    for (;;) {
      const page = await store.read(this.name, version + 1, LOAD_PAGE);
      if (page.length === 0) break;
      if (page[0]!.version !== version + 1) {
        // Another hub compacted between reading the snapshot and the events: start over, a few times.
        if (attempt < MAX_LOAD_RETRIES) return this.#load(attempt + 1);
        throw new Error(`${this.name}: the store's events start at ${page[0]!.version}, but its snapshot ends at ${version}`);
      }
      state = this.domain.evolveAll(state, page.map((event) => this.upcast(event)));
      version = page[page.length - 1]!.version;
    }
    // Assigned at once: nobody ever sees a half-loaded stream.
    this.state = state;
    this.version = version;
    this.#stateBytes = undefined;
    this.#lastSnapshot = snapshot?.version ?? 0;
    this.#snapshotBytes = 0;
    this.#sinceSnapshotBytes = 0;
    this.#loaded = true;
  }

  /**
   * Applies events the store has beyond this host's version — appended by another hub sharing the
   * store, or by an append whose outcome was unknown — and broadcasts them like its own.
   */
  async #catchUpFromStore(): Promise<void> {
    for (;;) {
      const page = await this.options.store.read(this.name, this.version + 1, LOAD_PAGE);
      if (page.length === 0) return;
      if (page[0]!.version !== this.version + 1) {
        // Compacted past us by another hub: start over from its snapshot; subscribers resync.
        await this.#load();
        for (const subscriber of this.subscribers) subscriber.reset('compacted');
        return;
      }
      const events = page.map((event) => this.upcast(event));
      this.state = this.domain.evolveAll(this.state, events);
      if (this.#stateBytes !== undefined) this.#stateBytes += eventBytes(events);
      this.version = events[events.length - 1]!.version;
      this.#broadcast(events);
      this.options.onCommitted(this, events);
    }
  }

  /** The store says the stream has `head` events: catch up if that is news (another hub wrote). */
  refresh(head: number): void {
    if (head > this.#toldHead) this.#toldHead = head;
    if (head <= this.version) return;
    this.#refreshRequested = true;
    this.#startDraining();
  }

  /** Brings a stored event to the current schema and strips storage-only fields. */
  upcast(stored: StoredEvent): Event {
    const { schemaVersion = 1, ...event } = stored;
    if (schemaVersion !== this.domain.eventVersion(event.type)) {
      event.data = this.domain.upcast(event.type, schemaVersion, event.data);
    }
    return event;
  }

  /** Reads retained events from `from` up to the current head (never beyond what was broadcast). */
  async readSince(from: number, limit: number): Promise<Event[]> {
    const stored = await this.options.store.read(this.name, from, limit);
    const events: Event[] = [];
    for (const event of stored) {
      if (event.version > this.version) break;
      events.push(this.upcast(event));
    }
    return events;
  }

  /** When the stream was last asked for (by a command, a subscription, a read): see `Hub` idle unloading. */
  lastUsed = 0;

  /** Loading, or commands queued or being processed: not to be unloaded. */
  get busy(): boolean {
    return this.#loading !== undefined || this.#draining || this.#queue.length > 0;
  }

  enqueue(command: QueuedCommand): void {
    this.#queue.push(command);
    this.#startDraining();
  }

  #startDraining(): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#idle = this.#drain();
  }

  /** Resolves once every queued command has been processed. */
  settled(): Promise<void> {
    return this.#idle;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 || this.#refreshRequested) {
      // First bring the state in line with the store: load it, or catch up when stale or told to.
      if (!this.#loaded || this.#stale || this.#refreshRequested) {
        this.#refreshRequested = false;
        const before = this.version;
        const synced = await this.#sync();
        // Told of a head beyond what the load or catch-up read (the notification came while it was
        // reading): read again, as long as reading gets somewhere.
        if (synced && this.#toldHead > this.version && this.version > before) this.#refreshRequested = true;
        if (!synced) {
          // The store is unreachable: answer what waits now; the next command tries again.
          const failure = new LockstepError('UNAVAILABLE', `stream ${this.name} is unavailable; retry the command`);
          for (const queued of this.#queue.splice(0)) queued.reject(failure);
          break;
        }
        continue;
      }
      const batch = this.#queue;
      this.#queue = [];
      try {
        await this.#process(batch, 0);
      } catch (error) {
        this.options.onError(error, `processing commands on ${this.name}`);
        const failure = new LockstepError('UNAVAILABLE', `stream ${this.name} is unavailable; retry the command`);
        for (const queued of batch) queued.reject(failure);
        // The store may or may not hold the batch: catch up with whatever it holds before going on.
        this.#stale = true;
      }
    }
    this.#draining = false;
  }

  /** Loads or catches up from the store; false when the store could not be read. */
  async #sync(): Promise<boolean> {
    try {
      if (!this.#loaded) await this.ready;
      else await this.#catchUpFromStore();
      this.#stale = false;
      return true;
    } catch (error) {
      if (this.#loaded) this.options.onError(error, `catching up ${this.name} from its store`);
      return false;
    }
  }

  async #process(batch: QueuedCommand[], attempt: number): Promise<void> {
    const { store, now } = this.options;
    const known = await store.findCommands(batch.map((queued) => queued.id));
    // One draft for the whole batch: a large collection is copied once, not once per command.
    const decided = createCommandBatch(this.domain, this.state, this.name);
    const admit = this.#budget();
    let version = this.version;
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
      known.set(queued.id, { commandId: queued.id, stream: this.name, fingerprint: print, version, refusal });
    };

    for (const queued of batch) {
      const print = fingerprint([this.name, queued.type, queued.payload]);
      const previous: CommandRecord | undefined = known.get(queued.id);
      if (previous) {
        outcomes.push(this.#answerDuplicate(queued, previous, print));
        continue;
      }
      if (queued.expectedVersion !== undefined && queued.expectedVersion !== version) {
        refuse(
          queued,
          print,
          new LockstepError('VERSION_CONFLICT', `stream ${this.name} is at version ${version}, not ${queued.expectedVersion}`, {
            currentVersion: version,
          }),
        );
        continue;
      }
      if (this.options.check) {
        const refusal = await this.#check(queued, this.options.check);
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
        produced = decided.apply(queued, { now: time, version, clientId: queued.clientId, admit: admit?.check });
      } catch (error) {
        const failure = error instanceof DomainRejection || error instanceof LockstepError ? LockstepError.from(error) : undefined;
        if (!failure) this.options.onError(error, `deciding ${queued.type} on ${this.name}`);
        refuse(queued, print, failure ?? new LockstepError('INTERNAL_ERROR', `the ${this.domain.name} domain failed on ${queued.type}`));
        continue;
      }
      version += produced.length;
      commits.push({ commandId: queued.id, fingerprint: print, events: produced.map((e) => this.#toStored(e)) });
      for (const event of produced) events.push(event);
      const record: CommandRecord = { commandId: queued.id, stream: this.name, fingerprint: print, version };
      known.set(queued.id, record);
      const ack: protocol.CommandResult = { id: queued.id, stream: this.name, version };
      const inBroadcast = produced.length > 0;
      outcomes.push(() => queued.resolve(ack, inBroadcast));
    }

    if (commits.length > 0) {
      try {
        await store.append(this.name, this.version, commits);
      } catch (error) {
        if (error instanceof LockstepError) {
          // The store refused on purpose and wrote nothing (the memory store at its bound answers
          // LIMIT_EXCEEDED): the commands it was to record get its answer; the rest (duplicates,
          // invalid payloads) get UNAVAILABLE, as after any failed append, and a retry answers them.
          const refused = new Set(commits.map((commit) => commit.commandId));
          const retry = new LockstepError('UNAVAILABLE', `stream ${this.name} is unavailable; retry the command`);
          for (const queued of batch) queued.reject(refused.has(queued.id) ? error : retry);
          return;
        }
        if (!(error instanceof StoreConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
        // Another hub appended first: take its events, then decide the whole batch again.
        await this.#catchUpFromStore();
        return this.#process(batch, attempt + 1);
      }
    }
    this.state = decided.finish();
    this.version = version;
    if (admit) this.#stateBytes = admit.bytes();
    // Events go out before the acks: on an ordered transport a client never holds an ack for a
    // version whose events it has not seen, unless some were lost (a gap it must resync).
    if (events.length > 0) this.#broadcast(events);
    for (const outcome of outcomes) outcome();
    if (events.length > 0) {
      this.options.onCommitted(this, events);
      this.#sinceSnapshotBytes += admit ? admit.added() : eventBytes(events);
      if (this.#snapshotDue()) await this.#snapshot();
    }
  }

  /**
   * Every `snapshotEvery` events; for a state of more than {@link SNAPSHOT_FREE_BYTES}, not before the
   * data of the events since the last snapshot add up to the state's size past that. A snapshot writes
   * the whole state (and the budget measures it): so its cost, spread over the events it covers, stays
   * the same per event whatever the size of the state, and a load replays no more events than the
   * snapshot's own size in JSON text.
   */
  #snapshotDue(): boolean {
    if (this.version - this.#lastSnapshot < this.options.snapshotEvery) return false;
    return this.#sinceSnapshotBytes >= this.#snapshotBytes - SNAPSHOT_FREE_BYTES;
  }

  /**
   * The state budget's check for one batch: a command is admitted while the state's estimated size
   * stays within `maxStateBytes`; past it, the state is measured, and the command refused if the
   * measure is past it too. So the budget costs a `JSON.stringify` of each event's data, plus one of
   * the state when the estimate (which only grows between measures) reaches the budget.
   */
  #budget(): { check: (events: readonly Event[], measure: () => number) => void; bytes: () => number; added: () => number } | undefined {
    const budget = this.options.maxStateBytes;
    if (budget === false) return undefined;
    let estimate = (this.#stateBytes ??= jsonLength(this.state));
    /** The event bytes of the commands admitted (for the snapshot cadence). */
    let total = 0;
    return {
      check: (events, measure) => {
        const added = eventBytes(events);
        if (estimate + added <= budget) {
          estimate += added;
          total += added;
          return;
        }
        const measured = measure();
        if (measured > budget) {
          throw new LockstepError('COMMAND_REJECTED', `stream ${this.name} would hold ${measured} characters of state, past its budget of ${budget}`, {
            reason: 'stateBudgetExceeded',
            maxStateBytes: budget,
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
  async #check(queued: QueuedCommand, check: (command: CommandCheck) => void | Promise<void>): Promise<LockstepError | undefined> {
    let payload: unknown;
    try {
      payload = this.domain.parseCommand(queued.type, queued.payload).payload;
    } catch (error) {
      return LockstepError.from(error);
    }
    try {
      const { id, type, clientId } = queued;
      await check({ id, stream: this.name, domain: this.domain.name, key: this.key, type, payload, clientId });
      return undefined;
    } catch (error) {
      if (error instanceof DomainRejection || error instanceof LockstepError) return LockstepError.from(error);
      this.options.onError(error, `checking ${queued.type} on ${this.name}`);
      return new LockstepError('INTERNAL_ERROR', `the check of ${queued.type} on ${this.name} failed`);
    }
  }

  /** The answer to a command id the store (or this batch) already holds: the same as the first time. */
  #answerDuplicate(queued: QueuedCommand, previous: CommandRecord, print: string): () => void {
    if (previous.stream !== this.name || previous.fingerprint !== print) {
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
    const ack: protocol.CommandResult = { id: queued.id, stream: this.name, version: previous.version, duplicate: true };
    return () => queued.resolve(ack, false);
  }

  #toStored(event: Event): StoredEvent {
    const schemaVersion = this.domain.eventVersion(event.type);
    if (schemaVersion === 1) return event;
    // Literals, not `{ ...event, schemaVersion }`: once that spread has seen a few shapes, V8 gives
    // every copy a hidden class of its own (≈ 280 B more per event a memory store keeps). Same key order.
    const { version, type, data, time, commandId } = event;
    return commandId === undefined ? { version, type, data, time, schemaVersion } : { version, type, data, time, commandId, schemaVersion };
  }

  #broadcast(events: readonly Event[]): void {
    const first = events[0]!.version;
    const last = events[events.length - 1]!.version;
    const message = { jsonrpc: '2.0', method: 'events', params: { stream: this.name, events } };
    const { pageBytes } = this.options;
    // Encoded once per codec, whatever the number of subscribers.
    const frames = new Map<Codec, Frame>();
    const frameFor = (codec: Codec): Frame => {
      let frame = frames.get(codec);
      if (frame === undefined) {
        frame = codec.encode(message);
        // Too large for one page and made of several commands: it goes out in parts instead.
        if (frameSize(frame) > pageBytes && splitPoint(events) > 0) throw TOO_LARGE;
        frames.set(codec, frame);
      }
      return frame;
    };
    for (const subscriber of this.subscribers) {
      if (!subscriber.live || subscriber.cursor !== first - 1) continue;
      try {
        subscriber.deliver(frameFor);
      } catch (error) {
        if (error !== TOO_LARGE) throw error;
        // Subscribers already sent the whole batch (of another codec) are past it: the parts skip them.
        const at = splitPoint(events);
        this.#broadcast(events.slice(0, at));
        this.#broadcast(events.slice(at));
        return;
      }
      subscriber.cursor = last;
    }
  }

  async #snapshot(): Promise<void> {
    const { store, retainEvents } = this.options;
    const version = this.version;
    // The snapshot cadence needs the state's size; and the budget's estimate only grows between
    // measures: measured again with each snapshot (as costly).
    const bytes = jsonLength(this.state);
    if (this.options.maxStateBytes !== false) this.#stateBytes = bytes;
    try {
      await store.saveSnapshot({ stream: this.name, version, state: this.state });
      this.#lastSnapshot = version;
      this.#snapshotBytes = bytes;
      this.#sinceSnapshotBytes = 0;
      await store.compact(this.name, version - retainEvents + 1);
    } catch (error) {
      this.options.onError(error, `snapshotting ${this.name}`);
    }
  }
}

/**
 * States up to this many characters of JSON text are snapshotted every `snapshotEvery` events, as
 * always (such a snapshot costs a few milliseconds); larger ones wait for events of their own size
 * past it (`StreamHost.#snapshotDue`).
 */
const SNAPSHOT_FREE_BYTES = 1024 * 1024;

/** Thrown inside a broadcast whose frame is too large, to send it in parts. */
const TOO_LARGE = Symbol('too large');


/**
 * Where to cut a batch of events in two without splitting a command (a live `events` notification
 * holds every event of each of its commands): the command boundary nearest the middle, or 0 when
 * the batch is one command.
 */
function splitPoint(events: readonly Event[]): number {
  const middle = events.length >> 1;
  for (let offset = 0; offset < events.length; offset++) {
    for (const at of [middle + offset, middle - offset]) {
      if (at > 0 && at < events.length && events[at]!.commandId !== events[at - 1]!.commandId) return at;
    }
  }
  return 0;
}


function eventBytes(events: readonly Event[]): number {
  let bytes = 0;
  for (const event of events) bytes += jsonLength(event.data);
  return bytes;
}

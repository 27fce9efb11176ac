import { LockstepError, frameSize, type AnyDomain, type Codec, type Frame, type Event } from '@lockstep/core';
import { eventBytes, startDraining, type CommandCheck, type QueuedCommand } from './commandPipeline.js';
import type { EventStore, StoredEvent } from './eventStore.js';

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

/**
 * One loaded stream: its state and version, its subscribers, loading it from its store (and catching
 * up with what other hubs appended), reading its retained events, and the live broadcast. Its
 * commands go through the stream's pipeline (`commandPipeline.ts`), which runs on this host's queue
 * and state: the fields marked internal are that pipeline's.
 */
export class StreamHost {
  state: unknown;
  version = 0;
  readonly subscribers = new Set<StreamSubscriber>();
  /** When the stream was last asked for (by a command, a subscription, a read): see `Hub` idle unloading. */
  lastUsed = 0;
  /** @internal Loaded from the store at least once. */
  loaded = false;
  #loading: Promise<void> | undefined;
  /** @internal The store may hold events this host has not applied (a failed append, a store outage). */
  stale = false;
  /** @internal Commands waiting for the next batch. */
  queue: QueuedCommand[] = [];
  /** @internal The pipeline's drain loop runs. */
  draining = false;
  /** @internal Settles when the drain loop stops. */
  idle: Promise<void> = Promise.resolve();
  /** @internal The store told of a head past this host's version: catch up before the next batch. */
  refreshRequested = false;
  /** @internal The highest head the store has told of (`refresh`), which a load in progress may not have read. */
  toldHead = 0;
  /**
   * @internal The length of the state's JSON text when last measured plus that of every event's data
   * since: what the state budget checks first, measuring again only when this passes it. Undefined: not measured.
   */
  stateBytes: number | undefined;
  /** @internal The version of the last snapshot. */
  lastSnapshot = 0;
  /** @internal The length of the state's JSON text at the last snapshot this host took (0: none since loading). */
  snapshotBytes = 0;
  /** @internal The length of the JSON text of the data of every event committed since that snapshot. */
  sinceSnapshotBytes = 0;

  constructor(
    readonly name: string,
    readonly key: string,
    readonly domain: AnyDomain,
    /** @internal */
    readonly options: StreamHostOptions,
  ) {
    this.state = domain.initialState();
    void this.ready.catch(() => {});
  }

  /**
   * Resolves once the stream is loaded from its store. A failed load (store unreachable) rejects
   * with UNAVAILABLE and is tried again by the next caller, so a stream recovers with its store.
   */
  get ready(): Promise<void> {
    if (this.loaded) return Promise.resolve();
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
    let state: unknown = snapshot ? snapshot.state : this.domain.initialState();
    let version = snapshot ? snapshot.version : 0;
    for (;;) {
      const page = await store.read(this.name, version + 1, LOAD_PAGE);
      if (page.length === 0) break;
      if (page[0]!.version !== version + 1) {
        // Another hub compacted between reading the snapshot and the events: start over, a few times.
        if (attempt < MAX_LOAD_RETRIES) return this.#load(attempt + 1);
        throw new Error(`${this.name}: the store's events start at ${page[0]!.version}, but its snapshot ends at ${version}`);
      }
      state = this.domain.evolveAll(
        state,
        page.map((event) => this.upcast(event)),
      );
      version = page[page.length - 1]!.version;
    }
    // Assigned at once: nobody ever sees a half-loaded stream.
    this.state = state;
    this.version = version;
    this.stateBytes = undefined;
    this.lastSnapshot = snapshot?.version ?? 0;
    this.snapshotBytes = 0;
    this.sinceSnapshotBytes = 0;
    this.loaded = true;
  }

  /**
   * @internal Applies events the store has beyond this host's version — appended by another hub
   * sharing the store, or by an append whose outcome was unknown — and broadcasts them like its own.
   */
  async catchUpFromStore(): Promise<void> {
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
      if (this.stateBytes !== undefined) this.stateBytes += eventBytes(events);
      this.version = events[events.length - 1]!.version;
      this.broadcast(events);
      this.options.onCommitted(this, events);
    }
  }

  /** @internal Loads or catches up from the store; false when the store could not be read. */
  async sync(): Promise<boolean> {
    try {
      if (!this.loaded) await this.ready;
      else await this.catchUpFromStore();
      this.stale = false;
      return true;
    } catch (error) {
      if (this.loaded) this.options.onError(error, `catching up ${this.name} from its store`);
      return false;
    }
  }

  /** The store says the stream has `head` events: catch up if that is news (another hub wrote). */
  refresh(head: number): void {
    if (head > this.toldHead) this.toldHead = head;
    if (head <= this.version) return;
    this.refreshRequested = true;
    startDraining(this);
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

  /** Loading, or commands queued or being processed: not to be unloaded. */
  get busy(): boolean {
    return this.#loading !== undefined || this.draining || this.queue.length > 0;
  }

  /** @internal Queues a command for the stream's pipeline (`commandPipeline.ts`); users call `hub.execute`. */
  enqueue(command: QueuedCommand): void {
    this.queue.push(command);
    startDraining(this);
  }

  /** Resolves once every queued command has been processed. */
  settled(): Promise<void> {
    return this.idle;
  }

  /**
   * @internal Sends committed events to every live subscriber at the version before them, encoded
   * once per codec. A frame past `pageBytes` made of several commands goes out in parts, cut
   * between commands.
   */
  broadcast(events: readonly Event[]): void {
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
        this.broadcast(events.slice(0, at));
        this.broadcast(events.slice(at));
        return;
      }
      subscriber.cursor = last;
    }
  }
}

/** Thrown inside a broadcast whose frame is too large, to send it in parts. */
/** Thrown (and caught) within one broadcast: a frame past a page that can be split. */
class TooLarge extends Error {}
const TOO_LARGE = new TooLarge('too large for one page');

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

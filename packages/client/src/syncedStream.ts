import {
  LockstepError,
  StreamSequencer,
  createCommandBatch,
  type CommandBatch,
  type TransportError,
  type AnyDomain,
  type CommandOf,
  type Event,
  type SequenceVerdict,
  type StateOf,
  type protocol,
} from '@lockstep/core';
import { BehaviorSubject, Subject, defer, distinctUntilChanged, map, type Observable } from 'rxjs';

export type SyncStatus = 'connecting' | 'online' | 'resyncing' | 'offline' | 'closed';

/** What a UI shows about one stream's sync. */
export interface StreamStatus {
  status: SyncStatus;
  /** Commands sent or queued whose effect is not yet in the confirmed state. */
  pending: number;
  /** Version of the confirmed state. */
  confirmedVersion: number;
  /** Highest version the hub is known to have. */
  serverVersion: number;
  /** serverVersion − confirmedVersion. */
  lag: number;
  lastError: LockstepError | undefined;
  /**
   * The confirmed state shown was restored from the client's storage and the hub has not answered
   * for it yet in this run: it may be behind (see docs/offline.md).
   */
  restored: boolean;
}

/**
 * One change of a stream's confirmed state, as {@link SyncedStream.changes$} reports it:
 * - `events`: events applied on top of the confirmed state, contiguous and in version order; every
 *   version is reported once (catch-up after a reconnect included), `version` is the last one;
 * - `snapshot`: the state was replaced by the hub's snapshot at `version` (the events up to it were
 *   not sent: the hub no longer retains them, or the client held no state);
 * - `reset`: the hub serves another log (a new epoch); versions start over from 0.
 */
export type ConfirmedChange<S = unknown> =
  { kind: 'events'; events: readonly Event[]; version: number } | { kind: 'snapshot'; state: S; version: number } | { kind: 'reset' };

export interface DispatchOptions {
  /** Refuse the command unless the stream is still at this version (optimistic concurrency). */
  expectedVersion?: number;
  /** Command id; default a fresh unique id. Reuse an id only to retry the same command. */
  id?: string;
}

/** A command waiting for its effect to reach the confirmed state. */
export interface PendingCommand {
  readonly id: string;
  readonly type: string;
  readonly payload: unknown;
  readonly expectedVersion: number | undefined;
  readonly time: number;
  /**
   * Its id was given by the caller (`DispatchOptions.id`), so another client may send it too: the
   * hub is asked for an explicit ack, never taken as implied by events that carry the id.
   */
  readonly explicitAck: boolean;
  /** Sent on the current connection (reset on reconnect, when everything unacknowledged is re-sent). */
  sent: boolean;
  ack: protocol.CommandResult | undefined;
  /** Its events are in the confirmed state: no longer re-applied on top of it. */
  applied: boolean;
  resolve: (result: protocol.CommandResult) => void;
  reject: (error: Error) => void;
}

/** The part of the client a stream needs: sending, and the client's clock and identity. */
export interface StreamOwner {
  readonly clientId: string;
  now(): number;
  newCommandId(): string;
  connectionStatus(): SyncStatus;
  send(stream: SyncedStream<AnyDomain>, command: PendingCommand): void;
  resubscribe(stream: SyncedStream<AnyDomain>): void;
  release(stream: SyncedStream<AnyDomain>): void;
}

/**
 * One stream as a client sees it: the confirmed state and version from the hub, the commands still
 * pending, and the optimistic view (pending commands re-decided on top of the confirmed state).
 */
export class SyncedStream<D extends AnyDomain> {
  #confirmed: StateOf<D>;
  /**
   * The order of versions: the confirmed version, the subscription epoch (answers to older subscribe
   * requests are fenced off), events and snapshot pages that come before their answer, the gap check.
   */
  readonly #sequencer = new StreamSequencer();
  #serverVersion = 0;
  #synced = false;
  /**
   * The hub refused this stream's subscription, or ended it for good (`unsubscribed`: the grant was
   * revoked). Nothing more arrives for it, and it is not resubscribed until the client asks again.
   */
  #refused = false;
  /** The confirmed state came from storage; cleared by the hub's first answer (or a reset). */
  #restored = false;
  /**
   * Pending commands in dispatch order. A Set, not an array: a client pipelining thousands of
   * commands settles each in O(1) instead of searching and splicing an array per ack.
   */
  readonly #pending = new Set<PendingCommand>();
  /** The pending commands by id (several only when an id was reused), to mark them applied as their events arrive. */
  readonly #pendingById = new Map<string, PendingCommand[]>();
  /** Acknowledged commands whose version the confirmed state has not reached yet. */
  readonly #acked = new Set<PendingCommand>();
  /** `pendingCommands` as an array, built when asked for after a change. */
  #pendingList: readonly PendingCommand[] | undefined;
  #lastError: LockstepError | undefined;
  #view: StateOf<D>;
  #viewDirty = false;
  /** Something the status shows may have changed since it was last computed. */
  #statusDirty = false;
  #closed = false;
  readonly #listeners = new Set<() => void>();
  readonly #waiters: Array<{ version: number; resolve(): void; reject(error: Error): void }> = [];
  readonly #state$: BehaviorSubject<StateOf<D>>;
  readonly #status$: BehaviorSubject<StreamStatus>;
  readonly #changes$ = new Subject<ConfirmedChange<StateOf<D>>>();

  constructor(
    readonly domain: D,
    readonly name: string,
    private readonly owner: StreamOwner,
  ) {
    this.#confirmed = domain.initialState() as StateOf<D>;
    this.#view = this.#confirmed;
    this.#state$ = new BehaviorSubject(this.#view);
    this.#status$ = new BehaviorSubject(this.#computeStatus());
  }

  /** The optimistic state: what the UI shows. Read-only. */
  get state$(): Observable<StateOf<D>> {
    return defer(() => {
      this.#refreshView();
      // Unobserved, the subject is not told of every view (see #refreshView): catch it up first.
      if (this.#state$.value !== this.#view && !this.#closed) this.#state$.next(this.#view);
      return this.#state$;
    });
  }

  get status$(): Observable<StreamStatus> {
    return defer(() => {
      this.#refreshStatus();
      return this.#status$;
    });
  }

  /**
   * The changes of the confirmed state as they happen: the events applied (each version once, in
   * order), snapshots that replaced the state, and resets to a new log. This is what a live tail
   * or an activity feed reads. Emitted synchronously while the change is applied, before `state$`
   * and `status$` show it; completes when the stream is closed.
   */
  get changes$(): Observable<ConfirmedChange<StateOf<D>>> {
    return this.#changes$.asObservable();
  }

  /** The confirmed state and its version, as last received from the hub. */
  get confirmed(): { state: StateOf<D>; version: number } {
    return { state: this.#confirmed, version: this.#sequencer.version };
  }

  get version(): number {
    return this.#sequencer.version;
  }

  get pendingCommands(): readonly PendingCommand[] {
    this.#pendingList ??= [...this.#pending];
    return this.#pendingList;
  }

  /** The optimistic state; the same object until something changes (for useSyncExternalStore). */
  getSnapshot = (): StateOf<D> => {
    this.#refreshView();
    return this.#view;
  };

  /** The stream's status; the same object until something in it changes (for useSyncExternalStore). */
  getStatus = (): StreamStatus => {
    this.#refreshStatus();
    return this.#status$.value;
  };

  /** Calls `listener` after every change of state or status. */
  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  };

  /** A slice of the optimistic state, emitted only when it changes. */
  select<T>(selector: (state: StateOf<D>) => T): Observable<T> {
    return this.state$.pipe(map(selector), distinctUntilChanged());
  }

  /**
   * Sends a command. Its effect shows in the optimistic state at once; the promise resolves with
   * the ack once the effect is in the confirmed state, and rejects if the hub refuses it.
   */
  dispatch(command: CommandOf<D>, options: DispatchOptions = {}): Promise<protocol.CommandResult> {
    if (this.#closed) return Promise.reject(new LockstepError('INVALID_REQUEST', `stream ${this.name} is closed`));
    // `CommandOf<D>` is opaque inside this generic class; every domain's commands have this shape.
    const typed = command as { type: string; payload: unknown };
    try {
      this.domain.parseCommand(typed.type, typed.payload);
    } catch (error) {
      return Promise.reject(LockstepError.from(error));
    }
    return new Promise((resolve, reject) => {
      const pending: PendingCommand = {
        id: options.id ?? this.owner.newCommandId(),
        type: typed.type,
        payload: typed.payload,
        expectedVersion: options.expectedVersion,
        time: this.owner.now(),
        explicitAck: options.id !== undefined,
        sent: false,
        ack: undefined,
        applied: false,
        resolve,
        reject,
      };
      this.#addPending(pending);
      this.#changed(true);
      this.owner.send(this, pending);
    });
  }

  /** Resolves once the confirmed state has reached `version`. */
  waitFor(version: number): Promise<void> {
    if (this.#sequencer.version >= version) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ version, resolve, reject }));
  }

  /** Stops syncing this stream; pending commands are still delivered if the client stays connected. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.owner.release(this);
    this.#synced = false;
    this.#changed(false);
    this.#refreshStatus();
    this.#state$.complete();
    this.#status$.complete();
    this.#changes$.complete();
    const error = new LockstepError('INVALID_REQUEST', `stream ${this.name} is closed`);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The hub refused this stream's subscription (its error is `status.lastError`, e.g. FORBIDDEN), or
   * ended it because the connection may no longer read the stream. The stream keeps its last
   * confirmed state but is not synced, and is not resubscribed by itself: it is asked for again on
   * the next connection, or when the application calls `client.stream()` for it again.
   */
  get refused(): boolean {
    return this.#refused;
  }

  // --- driven by the client -------------------------------------------------------------------

  /**
   * Starts from what a persistent client stored in an earlier run: the confirmed state at its
   * version (unless the stream already holds one), and the commands that were still pending, with
   * their ids, ahead of any dispatched since. Called before the stream's first subscription.
   */
  restore(confirmed: { state: StateOf<D>; version: number } | undefined, pending: readonly PendingCommand[]): void {
    if (this.#closed) return;
    if (confirmed && !this.#sequencer.hasState && confirmed.version > 0) {
      this.#confirmed = confirmed.state;
      this.#sequencer.restore(confirmed.version);
      this.#serverVersion = Math.max(this.#serverVersion, confirmed.version);
      this.#restored = true;
      this.#changes$.next({ kind: 'snapshot', state: this.#confirmed, version: confirmed.version });
    }
    const later = [...this.#pending];
    const known = new Set(later.map((command) => command.id));
    for (const command of later) this.#removePending(command);
    for (const command of pending) {
      if (known.has(command.id)) continue;
      known.add(command.id);
      this.#addPending(command);
      if (command.ack) this.#acked.add(command);
    }
    for (const command of later) this.#addPending(command);
    this.#settleAcked();
    this.#changed(true);
  }

  /** Parameters of the next subscribe request; starts a new subscription epoch. */
  beginSubscribe(): { params: protocol.SubscribeParams; epoch: number } {
    const epoch = this.#sequencer.begin();
    this.#refused = false;
    this.#synced = false;
    this.#changed(false);
    const since = this.#sequencer.since;
    const params: protocol.SubscribeParams = since !== undefined ? { stream: this.name, since } : { stream: this.name };
    return { params, epoch };
  }

  /** Applies a subscribe answer, unless a newer subscription has started since. */
  onSubscribed(epoch: number, result: protocol.SubscribeResult): void {
    if (this.#closed) return;
    const sequencer = this.#sequencer;
    const verdict = sequencer.answer(epoch, result);
    if (verdict === 'stale') return;
    if (verdict === 'pages') {
      // Still awaiting the answer's pages: events are held until they are all here.
      for (const page of sequencer.takeEarlyPages()) this.onSnapshotPage(page);
      return;
    }
    this.#restored = false;
    this.#serverVersion = Math.max(this.#serverVersion, result.head);
    if (verdict === 'snapshot') {
      this.#confirmed = result.snapshot as StateOf<D>;
      this.#changes$.next({ kind: 'snapshot', state: this.#confirmed, version: sequencer.version });
      this.#settleAcked();
    } else if (!this.#applyAs(verdict, result.events!)) {
      return;
    }
    const early = sequencer.takeEarly();
    if (early.length > 0 && !this.#applyAs(sequencer.events(early), early)) return;
    this.#afterConfirmedChange();
  }

  onSubscribeFailed(epoch: number, error: LockstepError): void {
    if (!this.#sequencer.failed(epoch)) return;
    // A passing failure (the store, a rate) leaves the stream to be asked for again on the next gap.
    this.#refused = error.code !== 'UNAVAILABLE' && error.code !== 'RATE_LIMITED';
    this.#lastError = error;
    this.#changed(false);
  }

  /**
   * The hub ended the subscription for good (`unsubscribed`, e.g. FORBIDDEN once a grant was
   * revoked). With a subscribe in flight, its answer says whether the stream may still be read.
   */
  onUnsubscribed(error: LockstepError): void {
    if (this.#closed || (this.#sequencer.awaiting && !this.#sequencer.assembling)) return;
    this.#sequencer.stop();
    this.#refused = true;
    this.#synced = false;
    this.#lastError = error;
    this.#changed(false);
  }

  /**
   * A page of a snapshot sent in pages. Pages come in order, right after the answer; one that does
   * not follow (another subscription's, a page missing) drops the assembly and resubscribes.
   */
  onSnapshotPage(page: protocol.SnapshotParams): void {
    if (this.#closed) return;
    // Held when the answer these pages follow is being handled a microtask from now.
    const verdict = this.#sequencer.page(page);
    if (verdict === 'gap') return this.#resync();
    if (verdict !== 'complete') return;
    const { text, epoch, result } = this.#sequencer.takeSnapshot()!;
    let snapshot: unknown;
    try {
      snapshot = JSON.parse(text);
    } catch {
      this.onSubscribeFailed(epoch, new LockstepError('PARSE_ERROR', `the pages of ${this.name}'s snapshot are not JSON`));
      return;
    }
    this.onSubscribed(epoch, { ...result, snapshot });
  }

  /**
   * A frame of the hub's was refused for its size: it may have held this stream's events or the
   * answer it waits for. The stream says so (`lastError`) and, unless a subscribe is under way (its
   * answer may be what was lost: it times out), resyncs rather than miss what the frame held.
   */
  onFrameRefused(error: LockstepError): void {
    if (this.#closed) return;
    this.#lastError = error;
    if (this.#sequencer.awaiting) this.#changed(false);
    else this.#resync();
  }

  /** An `events` notification. */
  onEvents(events: readonly Event[]): void {
    if (this.#closed || events.length === 0) return;
    this.#serverVersion = Math.max(this.#serverVersion, events[events.length - 1]!.version);
    const verdict = this.#sequencer.events(events);
    if (verdict === 'held' || verdict === 'ignore') return;
    if (this.#applyAs(verdict, events)) this.#afterConfirmedChange();
  }

  /** The hub acknowledged a command of ours. */
  onAck(command: PendingCommand, ack: protocol.CommandResult): void {
    command.ack = ack;
    this.#serverVersion = Math.max(this.#serverVersion, ack.version);
    // A closed or refused stream receives no more events: the ack is all it will learn of the command.
    if (ack.version <= this.#sequencer.version || this.#closed || this.#refused) {
      this.#settle(command);
      this.#changed(true);
      return;
    }
    if (this.#pending.has(command)) this.#acked.add(command);
    if (this.#sequencer.hasState && this.#sequencer.caughtUp) {
      // The hub sends events before acks: an ack ahead of us means events were lost on the way.
      this.#resync();
    } else {
      this.#changed(false);
    }
  }

  /**
   * The hub refused a command for good (a LockstepError), or the client gave up on it (a
   * TransportError when closed): it leaves the queue without blocking the others.
   */
  onCommandFailed(command: PendingCommand, error: LockstepError | TransportError): void {
    this.#removePending(command);
    if (error instanceof LockstepError) this.#lastError = error;
    command.reject(error);
    this.#changed(true);
  }

  /** The hub's log was replaced (new epoch): forget everything confirmed, keep pending commands. */
  reset(): void {
    this.#confirmed = this.domain.initialState() as StateOf<D>;
    this.#sequencer.reset();
    this.#serverVersion = 0;
    this.#restored = false;
    this.#acked.clear();
    for (const command of this.#pending) {
      // Acknowledged by the old log only: it must be sent to the new one like any other.
      command.applied = false;
      command.ack = undefined;
      command.sent = false;
    }
    this.#changes$.next({ kind: 'reset' });
    this.#changed(true);
  }

  /** Connection lost: everything unacknowledged will be sent again. */
  onDisconnected(): void {
    this.#sequencer.stop();
    this.#synced = false;
    for (const command of this.#pending) if (!command.ack) command.sent = false;
    this.#changed(false);
  }

  notifyConnectionStatus(): void {
    this.#changed(false);
  }

  // --- internals ------------------------------------------------------------------------------

  /**
   * Does what the sequencer said of `events`: applies them from the first fresh one (`apply`),
   * resyncs (`gap`), or nothing. Answers false on a gap.
   */
  #applyAs(verdict: SequenceVerdict, events: readonly Event[]): boolean {
    if (verdict === 'gap') {
      this.#resync();
      return false;
    }
    if (verdict !== 'apply') return true;
    const start = this.#sequencer.from;
    const fresh = start === 0 ? events : events.slice(start);
    const version = fresh[fresh.length - 1]!.version;
    this.#confirmed = this.domain.evolveAll(this.#confirmed, fresh) as StateOf<D>;
    this.#sequencer.applied(version);
    if (this.#pending.size > 0) {
      for (const event of fresh) {
        const commands = event.commandId === undefined ? undefined : this.#pendingById.get(event.commandId);
        if (commands) for (const command of commands) command.applied = true;
      }
    }
    this.#settleAcked();
    // A live event costs no allocation for a feed nobody reads.
    if (this.#changes$.observed) this.#changes$.next({ kind: 'events', events: fresh, version });
    return true;
  }

  #resync(): void {
    if (this.#refused) return;
    this.#synced = false;
    this.owner.resubscribe(this);
  }

  #afterConfirmedChange(): void {
    const version = this.#sequencer.version;
    this.#synced = this.#sequencer.caughtUp;
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const waiter = this.#waiters[i]!;
      if (version >= waiter.version) {
        this.#waiters.splice(i, 1);
        waiter.resolve();
      }
    }
    this.#changed(true);
  }

  /** Settles every acknowledged command whose version the confirmed state has reached. */
  #settleAcked(): void {
    if (this.#acked.size === 0) return;
    // Deleting the current entry while iterating a Set is safe.
    for (const command of this.#acked) {
      if (command.ack && command.ack.version <= this.#sequencer.version) this.#settle(command);
    }
  }

  #settle(command: PendingCommand): void {
    this.#removePending(command);
    command.resolve(command.ack!);
  }

  #addPending(command: PendingCommand): void {
    this.#pending.add(command);
    const same = this.#pendingById.get(command.id);
    if (same) same.push(command);
    else this.#pendingById.set(command.id, [command]);
    this.#pendingList = undefined;
  }

  #removePending(command: PendingCommand): void {
    if (!this.#pending.delete(command)) return;
    this.#acked.delete(command);
    this.#pendingList = undefined;
    const same = this.#pendingById.get(command.id);
    if (!same) return;
    if (same.length === 1) this.#pendingById.delete(command.id);
    else same.splice(same.indexOf(command), 1);
  }

  #computeView(): StateOf<D> {
    if (this.#pending.size === 0) return this.#confirmed;
    // The pending commands are re-decided in one draft: a large state is copied once, not per command.
    let batch: CommandBatch<D> | undefined;
    let version = this.#sequencer.version;
    for (const command of this.#pending) {
      if (command.applied || (command.ack && command.ack.version <= this.#sequencer.version)) continue;
      batch ??= createCommandBatch(this.domain, this.#confirmed, this.name);
      try {
        version += batch.apply(command, { now: command.time, version, clientId: this.owner.clientId }).length;
      } catch {
        // The hub will most likely refuse it too; until then it simply has no visible effect.
      }
    }
    return batch ? batch.finish() : this.#confirmed;
  }

  #computeStatus(): StreamStatus {
    const connection = this.owner.connectionStatus();
    const status: SyncStatus = this.#closed ? 'closed' : connection !== 'online' ? connection : this.#synced ? 'online' : 'resyncing';
    return {
      status,
      pending: this.#pending.size,
      confirmedVersion: this.#sequencer.version,
      serverVersion: this.#serverVersion,
      lag: Math.max(0, this.#serverVersion - this.#sequencer.version),
      lastError: this.#lastError,
      restored: this.#restored,
    };
  }

  get synced(): boolean {
    return this.#synced;
  }

  /** Recomputes the optimistic view if something changed since it was last computed. */
  #refreshView(): void {
    if (!this.#viewDirty) return;
    this.#viewDirty = false;
    const view = this.#computeView();
    if (view !== this.#view) {
      this.#view = view;
      // Observers are told at once; without any, state$ catches up when subscribed to.
      if (!this.#closed && this.#state$.observed) this.#state$.next(view);
    }
  }

  #refreshStatus(): void {
    if (!this.#statusDirty) return;
    this.#statusDirty = false;
    const previous = this.#status$.value;
    const next = this.#computeStatus();
    if (!sameStatus(previous, next) && !this.#status$.closed) this.#status$.next(next);
  }

  #changed(stateMayHaveChanged: boolean): void {
    if (stateMayHaveChanged) this.#viewDirty = true;
    // The view is recomputed lazily: at once for observers of state$, else on the next getSnapshot().
    if (this.#state$.observed) this.#refreshView();
    // Like the view, the status is recomputed at once for observers of status$, else when asked for.
    this.#statusDirty = true;
    if (this.#status$.observed) this.#refreshStatus();
    if (this.#listeners.size > 0) for (const listener of this.#listeners) listener();
  }
}

function sameStatus(a: StreamStatus, b: StreamStatus): boolean {
  return (
    a.status === b.status &&
    a.pending === b.pending &&
    a.confirmedVersion === b.confirmedVersion &&
    a.serverVersion === b.serverVersion &&
    a.lastError === b.lastError &&
    a.restored === b.restored
  );
}

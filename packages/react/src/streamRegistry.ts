import type { LockstepClient, SyncedStream } from '@lockstep/client';
import { streamName, systemClock, type AnyDomain, type Clock, type TimerHandle } from '@lockstep/core';

/** How long a stream the hooks opened stays open after the last component using it unmounts. */
export const DEFAULT_RELEASE_AFTER_MS = 1_000;

interface Entry {
  stream: SyncedStream<AnyDomain>;
  /** Mounted components using the stream. */
  users: number;
  /** Opened by the hooks (so closed by them when unused); a stream the application opened stays open. */
  owned: boolean;
  timer: TimerHandle | undefined;
}

/**
 * Reference counts of the streams React components use, per client. Rendering opens a stream (or
 * finds the one already open); mounting retains it; when the last user unmounts, a stream the hooks
 * opened themselves is closed (unsubscribed from the hub) after a grace period, so StrictMode's
 * mount–unmount–mount and a quick re-render elsewhere reuse the same subscription.
 */
export class StreamRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #openListeners = new Set<() => void>();

  constructor(
    readonly client: LockstepClient,
    private readonly releaseAfterMs: number = DEFAULT_RELEASE_AFTER_MS,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The open stream `<domain>/<key>`, opening it if needed. Safe to call during render. */
  open<D extends AnyDomain>(domain: D, key: string): SyncedStream<D> {
    const name = streamName(domain.name, key);
    const known = this.#entries.get(name);
    if (known && !known.stream.closed && this.client.streams.get(name) === known.stream) {
      if (known.stream.domain !== domain) return this.client.stream(domain, key); // throws: another definition
      return known.stream as unknown as SyncedStream<D>;
    }
    if (known) this.#forget(name, known);
    const owned = !this.client.streams.has(name);
    const stream = this.client.stream(domain, key);
    const entry: Entry = { stream: stream, users: 0, owned, timer: undefined };
    this.#entries.set(name, entry);
    // Rendered but maybe never mounted (a discarded concurrent render): released unless retained.
    this.#scheduleRelease(name, entry);
    // Announced after the render that opened it: listeners update other components' state.
    if (owned && this.#openListeners.size > 0) void Promise.resolve().then(() => this.#announceOpen());
    return stream;
  }

  /** Marks `stream` as used by one more mounted component; call the returned function on unmount. */
  retain(stream: SyncedStream<AnyDomain>): () => void {
    const entry = this.#entries.get(stream.name);
    if (!entry || entry.stream !== stream) return () => {};
    entry.users++;
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      entry.users--;
      this.#scheduleRelease(stream.name, entry);
    };
  }

  /** Called whenever the hooks open a new stream (so `useConnectionStatus` watches it too). */
  onOpen(listener: () => void): () => void {
    this.#openListeners.add(listener);
    return () => this.#openListeners.delete(listener);
  }

  #announceOpen(): void {
    for (const listener of this.#openListeners) listener();
  }

  #scheduleRelease(name: string, entry: Entry): void {
    if (entry.users > 0 || entry.timer !== undefined) return;
    if (!entry.owned) {
      this.#entries.delete(name);
      return;
    }
    if (this.releaseAfterMs === Infinity) return;
    entry.timer = this.clock.setTimeout(() => {
      entry.timer = undefined;
      if (entry.users > 0 || this.#entries.get(name) !== entry) return;
      this.#entries.delete(name);
      entry.stream.close();
    }, this.releaseAfterMs);
  }

  #forget(name: string, entry: Entry): void {
    if (entry.timer !== undefined) this.clock.clearTimeout(entry.timer);
    entry.timer = undefined;
    this.#entries.delete(name);
  }
}

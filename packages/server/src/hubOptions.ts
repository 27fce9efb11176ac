/** What a {@link Hub} is made of, its defaults, and the options of its calls. */
import type { AnyDomain, Clock, Codec, FailureLimit, protocol } from '@lockstep/core';
import type { CommandCheck } from './commandPipeline.js';
import type { EventStore } from './eventStore.js';
import type { AccessAction, Identity } from './identity.js';
import type { ServiceImplementation } from './serviceRegistry.js';

export interface HubOptions {
  /** The domains this hub serves; streams of other domains are refused (UNKNOWN_STREAM). */
  domains: readonly AnyDomain[];
  /** Where logs live. Default: a new MemoryEventStore. */
  store?: EventStore;
  clock?: Clock;
  /** Codec of connections accepted without one. Default JSON. */
  codec?: Codec;
  serverId?: string;
  /** Heartbeat interval advertised to clients in `hello`. Default 15 s. */
  heartbeatMs?: number;
  /**
   * How long a lease holder may be gone before the hub expires its leases. Default 10 s. With
   * several hubs on a store with a presence registry, also how long a hub that stopped heartbeating
   * (crashed) still counts: its holders' leases expire within twice this.
   */
  leaseGraceMs?: number;
  /**
   * A snapshot is written every this many events per stream. Default 1,000. A state of more than
   * 1 MiB of JSON is snapshotted only once the data of the events since its last snapshot add up to
   * its size (past that 1 MiB), so that snapshots cost the same per event whatever the state's size.
   */
  snapshotEvery?: number;
  /** Events kept replayable behind each snapshot (the retention window). Default 10,000. */
  retainEvents?: number;
  /** Largest number of events in one catch-up page. Default 1,000. */
  catchUpPage?: number;
  /**
   * The largest frame the hub builds for a page of events or of a snapshot, in the codec's units
   * (UTF-16 code units for JSON text, bytes for msgpack): event pages and live broadcasts are cut
   * below it, and a snapshot larger than it goes in `snapshot` pages to a client that takes them
   * (docs/protocol.md#snapshot-pages). Lowered to half the client's `maxFrameBytes` when it says one.
   * Default 256 Ki.
   */
  pageBytes?: number;
  /**
   * A stream's state budget: a command whose events would take the state's JSON text past this
   * many characters is refused (COMMAND_REJECTED, `reason: "stateBudgetExceeded"`), so no writer can
   * make a stream too large to load or send. `false` turns it off. Default 64 Mi.
   */
  maxStateBytes?: number | false;
  /** A connection that has not said `hello` this long after opening is closed. Default 5 s. */
  helloTimeoutMs?: number;
  /**
   * Per-connection message rate (token bucket). Messages over it are answered RATE_LIMITED; a
   * connection with more than `burst` of those within 10 s is closed. `false` turns it off.
   * Default 1,000 messages a second, bursts of 2,000.
   */
  rateLimit?: { messagesPerSecond: number; burst: number } | false;
  /**
   * Slow-consumer bound: when a connection's transport holds more than this many bytes not yet sent,
   * the hub stops sending it events and drops its subscriptions; once the buffer has drained it sends
   * a `resync` per stream and the client catches up from its version (or a snapshot). Needs a
   * transport that reports `bufferedAmount`. Default 4 MiB.
   */
  maxBufferedBytes?: number;
  /**
   * Token guessing: a peer (its remote address when the transport knows it, else the connection)
   * whose `hello` tokens were refused `failures` times within `windowMs` gets RATE_LIMITED for its
   * next `hello`, without `authenticate` being called, and is disconnected. `false` turns it off.
   * Default 10 refusals a minute.
   */
  authFailureLimit?: FailureLimit | false;
  /**
   * A loaded stream nobody has used for this long — no subscriber, no command, no read, and no
   * lease in its state — is dropped from memory (it loads again from the store when next asked
   * for), so a hub serving many streams over time holds only the ones in use. `false` keeps every
   * stream loaded (up to `maxLoadedStreams`). Default 10 minutes.
   */
  unloadIdleStreamsMs?: number | false;
  /**
   * Most streams kept loaded at once, idle or not. Loading one more first unloads the least recently
   * used stream that the idle timeout could unload — no subscriber, no command queued or running, not
   * loading, no lease in its state — without waiting for its timeout. A soft cap: a stream in use is
   * never unloaded, so while more than this many are in use, loading goes on above it; the next loads,
   * or a look a second later, bring the count back down once they are idle. Each load looks at no more
   * than 32 streams, so it costs O(1). `false`:
   * no cap (only `unloadIdleStreamsMs` unloads). Default 10,000 (about 10 MB for streams of small
   * state; see docs/scaling.md).
   */
  maxLoadedStreams?: number | false;
  /**
   * Subscriptions one connection may hold at once (live, catching up, or being prepared). A subscribe
   * past it is answered LIMIT_EXCEEDED and changes nothing; resubscribing a stream already subscribed
   * takes no new place. Default 4,096.
   */
  maxSubscriptionsPerConnection?: number;
  /**
   * Streams not loaded in the hub that one connection may cause to be loaded, by `subscribe` or
   * `command`, per minute (a token bucket: this many at once, then this many a minute). Past it the
   * request is answered RATE_LIMITED with `retryAfterMs` and `limit: "newStreamsPerMinute"`, and nothing
   * is loaded. Requests for streams already loaded are not counted. `false` turns it off. Default 1,000.
   */
  newStreamsPerMinute?: number | false;
  /**
   * Called with the `hello` token; answer the identity, or throw / answer undefined to refuse.
   * Not called for connections accepted with an identity (`accept(transport, { identity })`), as the
   * WebSocket server does after its upgrade-time `authenticate`.
   */
  authenticate?: (request: {
    token: string | undefined;
    clientId: string | undefined;
    info: Readonly<Record<string, unknown>>;
  }) => Identity | undefined | Promise<Identity | undefined>;
  /**
   * Called per resource and action; answer false to refuse with FORBIDDEN. Default: everything allowed.
   * Asked at every `subscribe` (`read`) and `command` (`write`) with the stream's name, and — for
   * services served without an `authorize` rule of their own — at every call of a method with its
   * wire name and `call` (`authorize(identity, "orchestrate.route", "call")`: no stream name has a
   * `.` before a `/`, so the two never meet). When its answers change (a grant revoked), call
   * {@link Hub.reauthorize} so live subscriptions and service resources are checked again.
   */
  // A function property (it is called without a receiver) whose type is taken from a method, so its
  // parameters stay bivariant: a hook written for `StreamAction` alone still fits.
  authorize?: { hook(identity: Identity | undefined, resource: string, action: AccessAction): boolean | Promise<boolean> }['hook'];
  /**
   * The application's own rule for commands, for what a domain's pure `decide` cannot see: another
   * stream, or anything outside the hub (the reference server refuses to focus a session its tasks
   * stream does not hold). Called in the stream's pipeline, in order, for every new command whoever
   * sent it (a connection, `execute`, the hub itself) once its payload has validated, just before
   * the domain decides it; never for a command id already answered. Return (or resolve) to let it
   * through; throw to refuse it. `reject(reason, message, details)` answers COMMAND_REJECTED with that
   * reason, recorded like the domain's own rejections (a retry of the id gets the same answer). A
   * `LockstepError` of another code (UNAVAILABLE when what it reads cannot be loaded) is answered as it
   * is and not recorded, nor is INTERNAL_ERROR for anything else thrown (reported to `onError`): a
   * retry is checked again. The stream's later commands wait for it, so keep it short, and never wait
   * in it for a command on the same stream. A check, not a transaction: what it read may change right
   * after. See docs/domains.md.
   */
  checkCommand?: (command: CommandCheck) => void | Promise<void>;
  /**
   * Services the hub serves from the start (`implement(service, handlers, options)`), announced in
   * every `hello` answer; `hub.serve` adds more. For example `@lockstep/pty`'s terminal service.
   */
  services?: readonly ServiceImplementation[];
  /**
   * The application this hub is, announced in `hello` answers; with `accepts` (a semver range), a
   * `hello` whose `app` has another name, a version outside the range, or no `app` at all is refused
   * with INCOMPATIBLE_APP (`data: {app, peer}`), and the connection may say `hello` again.
   */
  app?: protocol.AppRequirement;
  /** How long `hub.call` (and `peer.call`) waits for a client's answer by default. Default 30 s. */
  callTimeoutMs?: number;
  /** Errors the hub recovered from (store failures, bugs in a domain). Default: console.error. */
  onError?: (error: unknown, context: string) => void;
}

export const HUB_DEFAULTS = {
  heartbeatMs: 15_000,
  leaseGraceMs: 10_000,
  snapshotEvery: 1_000,
  retainEvents: 10_000,
  catchUpPage: 1_000,
  pageBytes: 256 * 1024,
  maxStateBytes: 64 * 1024 * 1024,
  helloTimeoutMs: 5_000,
  rateLimit: { messagesPerSecond: 1_000, burst: 2_000 },
  maxBufferedBytes: 4 * 1024 * 1024,
  authFailureLimit: { failures: 10, windowMs: 60_000 },
  unloadIdleStreamsMs: 600_000,
  maxLoadedStreams: 10_000,
  maxSubscriptionsPerConnection: 4_096,
  newStreamsPerMinute: 1_000,
  callTimeoutMs: 30_000,
} as const;

/** How a connection is served. */
export interface AcceptOptions {
  /** The codec of the transport's frames. Default: the hub's (JSON). */
  codec?: Codec;
  /**
   * The peer's identity when the transport has already authenticated it (a WebSocket upgrade with
   * a bearer token): `hello` then skips `authenticate`, and `authorize` gets this identity.
   */
  identity?: Identity;
}

/** Options of one command executed through {@link Hub.execute}. */
export interface ExecuteOptions {
  /** The client the command comes from: the holder of any lease it takes. */
  clientId?: string;
  /**
   * Who asks, for a request that came from outside the process (a REST call): the command then
   * passes the `authorize` hook for `write` first, exactly as a connection's command does, and is
   * refused with FORBIDDEN when the hook says no. Present but undefined: an anonymous caller, checked
   * too. Absent: the caller is the application itself (background work), and nothing is checked.
   */
  identity?: Identity | undefined;
}

/** Options of one read through {@link Hub.read}. */
export interface ReadOptions {
  /**
   * Who asks (a REST or SSE request): the read passes the `authorize` hook for `read` first.
   * Present but undefined: an anonymous caller, checked too. Absent: the application itself.
   */
  identity?: Identity | undefined;
}

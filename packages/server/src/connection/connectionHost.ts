import type { Clock, FailureWindow, protocol } from '@lockstep/core';
import type { EventStore } from '../eventStore.js';
import type { AccessAction, Identity } from '../identity.js';
import type { Peer } from '../peer.js';
import type { ServiceRegistry } from '../serviceRegistry.js';
import type { QueuedCommand } from '../commandPipeline.js';
import type { StreamHost } from '../streamHost.js';
import type { Connection } from './connection.js';

/**
 * What a {@link Connection} needs of the hub that accepted it: the hub's settings and hooks, its
 * streams, and the events of a connection's life it keeps count of. Internal to the package (not
 * exported). The hub is its only implementation, structurally — no `implements`, so that these
 * members can be marked internal on `Hub` and stripped from its declarations — and a call through it
 * costs what a call of the hub did.
 */
export interface ConnectionHost {
  readonly serverId: string;
  readonly clock: Clock;
  readonly store: EventStore;
  readonly domainNames: string[];
  readonly settings: ConnectionSettings;
  /** Refused `hello` tokens per peer (`authFailureLimit`). */
  readonly authFailures: FailureWindow | undefined;
  readonly app: protocol.AppRequirement | undefined;
  readonly services: ServiceRegistry;
  /** True when an `authorize` hook was given: without one, nothing needs awaiting. */
  readonly checksAccess: boolean;

  authenticate(token: string | undefined, clientId: string | undefined, info: Readonly<Record<string, unknown>>): Promise<Identity | undefined>;
  authorize(identity: Identity | undefined, resource: string, action: AccessAction): Promise<void>;
  reportError(error: unknown, context: string): void;

  /** True when asking for `stream` would load it (what `newStreamsPerMinute` counts). */
  wouldLoad(stream: string): boolean;
  /** The host of a stream, loaded on first use; throws UNKNOWN_STREAM. */
  stream(name: string): StreamHost;
  /** Whether `host` still serves its stream (not unloaded since). */
  holds(host: StreamHost): boolean;
  /** Queues a command in its stream's pipeline; refusals before the pipeline go to `queued.reject`. */
  enqueue(stream: string, queued: QueuedCommand): void;

  /** FORBIDDEN when the client id belongs to another identity. */
  clientPresent(clientId: string, identity: Identity | undefined): void;
  /** The connection's `hello` answer is on its way (`hub.onPeer`). */
  greeted(connection: Connection): void;
  reauthorizePeer(peer: Peer): Promise<void>;
  peerClosed(peer: Peer): void;
  connectionClosed(connection: Connection): void;
}

/** The hub's settings a connection reads (`HubOptions`, defaults applied). */
export interface ConnectionSettings {
  readonly heartbeatMs: number;
  readonly helloTimeoutMs: number;
  readonly rateLimit: { messagesPerSecond: number; burst: number } | false;
  readonly maxBufferedBytes: number;
  readonly maxSubscriptionsPerConnection: number;
  readonly newStreamsPerMinute: number | false;
  readonly pageBytes: number;
  readonly catchUpPage: number;
  readonly callTimeoutMs: number;
}

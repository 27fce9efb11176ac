import type { Identity, StreamAction } from './hub.js';

/**
 * What an extension sees of the connection a request came on. Extensions add methods and
 * notifications to lockstep/1 beside the core ones (the PTY streamer's `terminal.*`), without
 * reaching into the hub's internals.
 */
export interface ExtensionSession {
  /** Unique per connection. */
  readonly sessionId: string;
  /** The client id from `hello` (the lease holder). */
  readonly clientId: string;
  readonly identity: Identity | undefined;
  /** Sends a notification to this connection; false once it is closed. */
  notify(method: string, params: unknown): boolean;
  /** Bytes this connection's transport holds unsent (0 when the transport cannot tell). */
  readonly bufferedAmount: number;
  /** Throws FORBIDDEN unless the hub's `authorize` hook allows `action` on `stream` for this connection. */
  authorize(stream: string, action: StreamAction): Promise<void>;
  readonly closed: boolean;
}

/**
 * A set of extra lockstep/1 methods. Each handler gets the request's params (unvalidated: validate
 * them with a schema and throw a `LockstepError` with `INVALID_PARAMS`) and the session; what it
 * answers is the result, what it throws is the error. Methods are only reachable after `hello`, and
 * count against the connection's rate limit like any other message.
 */
export interface HubExtension {
  readonly name: string;
  readonly methods: Readonly<Record<string, (params: unknown, session: ExtensionSession) => unknown>>;
  /** The connection closed: release whatever the extension holds for it. */
  onSessionClosed?(session: ExtensionSession): void;
  /**
   * The application said grants changed (`Hub.reauthorize`) for this connection: check again
   * (`session.authorize`) what the extension serves it, and end — with a notification the client
   * understands — what is no longer allowed. The hub waits for the returned promise; what it throws
   * is reported through `onError`.
   */
  onReauthorize?(session: ExtensionSession): void | Promise<void>;
  /** The hub is closing: stop everything (kill processes, clear timers). */
  close?(): void | Promise<void>;
}

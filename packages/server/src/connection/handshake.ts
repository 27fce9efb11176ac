import { LockstepError, PROTOCOL_VERSION, incompatibleApp, protocol } from '@lockstep/core';
import type { Identity } from '../identity.js';
import type { Connection } from './connection.js';

/**
 * The handshake: `hello` within `helloTimeoutMs` of opening, the token (or the transport's identity)
 * authenticated with refused tokens throttled per peer, the client id claimed for its identity, and
 * the capabilities both sides take from here on (batches, acks implied by events, snapshot pages, the
 * page size). Requests pipelined behind a `hello` wait for it ({@link afterHello}).
 */

/** The smallest page a client can ask for (with `maxFrameBytes` in hello): its half, at least this. */
export const MIN_PAGE_BYTES = 4 * 1024;

/** Closes the connection if it has not said `hello` within `helloTimeoutMs`. */
export function startHelloTimer(connection: Connection): void {
  const { clock, settings } = connection.host;
  const { helloTimeoutMs } = settings;
  connection.helloTimer = clock.setTimeout(() => {
    if (!connection.greeted) connection.close(`no hello within ${helloTimeoutMs} ms`);
  }, helloTimeoutMs);
}

/** Cancels the hello timeout and lets go of its handle (a Timeout and its closure, kept for as long as the connection otherwise). */
export function stopHelloTimer(connection: Connection): void {
  if (connection.helloTimer === undefined) return;
  connection.host.clock.clearTimeout(connection.helloTimer);
  connection.helloTimer = undefined;
}

/**
 * Resolves once a `hello` being authenticated has been decided, if one is; rejects with
 * HANDSHAKE_REQUIRED when the connection is not greeted then. What a request sent before the answer
 * to `hello` waits for, instead of being refused.
 */
export async function afterHello(connection: Connection, method: string): Promise<void> {
  if (!connection.greeted && connection.greeting) await connection.greeting.catch(() => {});
  if (!connection.greeted) throw new LockstepError('HANDSHAKE_REQUIRED', `send hello before ${method}`);
}

export async function hello(connection: Connection, params: protocol.HelloParams): Promise<protocol.HelloResult> {
  if (params.protocol !== PROTOCOL_VERSION) {
    throw new LockstepError('UNSUPPORTED_PROTOCOL', `protocol ${params.protocol} is not supported`, { supported: [PROTOCOL_VERSION] });
  }
  if (connection.greeted || connection.greeting) throw new LockstepError('INVALID_REQUEST', 'hello was already done on this connection');
  const { host, transport } = connection;
  // Token guessing is throttled per peer: its address when the transport knows it.
  const throttle = connection.preauthenticated ? undefined : host.authFailures;
  const remoteAddress = transport.info?.['remoteAddress'];
  const peer = typeof remoteAddress === 'string' ? `address:${remoteAddress}` : `session:${connection.sessionId}`;
  const retryAfterMs = throttle?.retryAfterMs(peer) ?? 0;
  if (retryAfterMs > 0) {
    connection.closeAfterReply = 'too many refused tokens';
    throw new LockstepError('RATE_LIMITED', `too many refused tokens; retry in ${retryAfterMs} ms`, { retryAfterMs });
  }
  let identity: Identity | undefined;
  const authenticating = connection.preauthenticated ?? host.authenticate(params.token, params.clientId, transport.info ?? {});
  connection.greeting = Promise.resolve(authenticating);
  try {
    identity = await authenticating;
  } catch (error) {
    if (error instanceof LockstepError && error.code === 'UNAUTHORIZED') throttle?.fail(peer);
    throw error;
  } finally {
    connection.greeting = undefined;
  }
  if (connection.closed) throw new LockstepError('UNAVAILABLE', 'connection closed');
  // After authentication: the refusal names the hub's application.
  const refusal = incompatibleApp(host.app, params.app, 'hub');
  if (refusal) throw refusal;
  const clientId = params.clientId ?? `anon-${connection.sessionId}`;
  // FORBIDDEN when the client id belongs to another identity: nothing is set, hello may be sent again.
  host.clientPresent(clientId, identity);
  connection.identity = identity;
  connection.clientId = clientId;
  if (params.services !== undefined && params.services.length > 0)
    connection.announcedServices = new Map(params.services.map(({ name, version }) => [name, version]));
  connection.peerApp = params.app;
  connection.greeted = true;
  stopHelloTimer(connection);
  const result = helloResult(connection);
  result.capabilities['eventAcks'] = true;
  connection.eventAcks = params.capabilities?.['eventAcks'] === true;
  result.capabilities['snapshotPages'] = true;
  connection.snapshotPages = params.capabilities?.['snapshotPages'] === true;
  const maxFrameBytes = params.capabilities?.['maxFrameBytes'];
  connection.pageBytes = host.settings.pageBytes;
  if (typeof maxFrameBytes === 'number' && maxFrameBytes >= 2 * MIN_PAGE_BYTES)
    connection.pageBytes = Math.min(connection.pageBytes, Math.floor(maxFrameBytes / 2));
  if (connection.codec.join) {
    result.capabilities['batch'] = true;
    // From the answer on: it leaves alone (nothing is held yet), everything after may be batched.
    connection.batching = params.capabilities?.['batch'] === true;
  }
  return result;
}

/** The hub's half of the `hello` answer, before the capabilities this connection adds. */
function helloResult(connection: Connection): protocol.HelloResult {
  const { host } = connection;
  const result: protocol.HelloResult = {
    protocol: PROTOCOL_VERSION,
    serverId: host.serverId,
    sessionId: connection.sessionId,
    epoch: host.store.epoch,
    capabilities: { codecs: ['json', 'msgpack'], catchUpPage: host.settings.catchUpPage },
    heartbeatMs: host.settings.heartbeatMs,
    domains: host.domainNames,
  };
  const services = host.services.announced();
  if (services.length > 0) result.services = services;
  if (host.app) result.app = { name: host.app.name, version: host.app.version };
  return result;
}

import { LockstepError, protocol, writeBatched, type Frame } from '@lockstep/core';
import type { Connection } from './connection.js';

/**
 * The outbox: every message to the client leaves through here. Encoding, batching the frames of one
 * tick, shedding a client that stops reading (its streams resync once it reads again), and the
 * per-connection rate limit with its strikes. Functions of the {@link Connection}, whose fields hold
 * the state (`held`, `overloaded`, `bucket`, `strikes`): nothing is allocated per connection for them.
 */

/** How often a shed connection's buffer is checked for having drained. */
export const DRAIN_CHECK_MS = 50;
/** Window over which rate-limited messages are counted before a flooding client is closed. */
const STRIKE_WINDOW_MS = 10_000;

type RequestId = protocol.RequestId;

/** Encodes and writes a message (nothing once closed; a message the codec refuses is reported). */
export function send(connection: Connection, message: protocol.Message): void {
  if (connection.closed) return;
  let frame: Frame;
  try {
    frame = connection.codec.encode(message);
  } catch (error) {
    connection.host.reportError(error, 'encoding a message');
    return;
  }
  write(connection, frame);
}

export function sendError(connection: Connection, id: RequestId | null, error: LockstepError): void {
  send(connection, { jsonrpc: '2.0', id, error: error.toJSON() });
}

/** The answer to a request of this client. */
export function reply(connection: Connection, id: RequestId, result: unknown): void {
  send(connection, { jsonrpc: '2.0', id, result });
}

/** The error answer to a request; an error that is not a LockstepError is a bug, reported too. */
export function replyError(connection: Connection, id: RequestId, error: unknown, method: string = protocol.Methods.command): void {
  if (!(error instanceof LockstepError)) connection.host.reportError(error, `handling ${method}`);
  sendError(connection, id, LockstepError.from(error));
}

/**
 * Every frame to the client goes through here. With batching, the frames of one tick (a batch's
 * events and acks, answers to a batch of requests) are held and leave as batch frames at its end,
 * after every promise settled in the tick: one frame for the client to parse instead of hundreds.
 */
export function write(connection: Connection, frame: Frame): void {
  if (!connection.batching) {
    connection.transport.send(frame);
    return;
  }
  if (connection.held) {
    connection.held.push(frame);
    return;
  }
  connection.held = [frame];
  // `nextTick` passes arguments: no closure per connection.
  process.nextTick(flushHeld, connection);
}

/** Writes the frames held in this tick, as batch frames (see {@link write}). */
export function flushHeld(connection: Connection): void {
  const held = connection.held;
  if (!held) return;
  connection.held = undefined;
  if (connection.closed) return;
  writeBatched(held, connection.codec.join!, (frame) => connection.transport.send(frame));
}

/**
 * Drops every subscription of a client that does not read (past `maxBufferedBytes` unsent), and
 * resyncs them (`resync`, reason `slowConsumer`) once its buffer has drained below a quarter of that.
 * Subscriptions that become live meanwhile join the list instead (`deferResync`).
 */
export function shed(connection: Connection): void {
  connection.overloaded = connection.subscriptions.dropAll();
  const { host } = connection;
  const lowWater = host.settings.maxBufferedBytes / 4;
  const check = () => {
    if (connection.closed) return;
    if ((connection.transport.bufferedAmount ?? 0) > lowWater) {
      host.clock.setTimeout(check, DRAIN_CHECK_MS);
      return;
    }
    const streams = connection.overloaded ?? [];
    connection.overloaded = undefined;
    for (const stream of streams) {
      send(connection, { jsonrpc: '2.0', method: protocol.Notifications.resync, params: { stream, reason: 'slowConsumer' } });
    }
  };
  host.clock.setTimeout(check, DRAIN_CHECK_MS);
}

/** While shedding: `stream` is resynced with the others once the client reads again (true), else false. */
export function deferResync(connection: Connection, stream: string): boolean {
  const overloaded = connection.overloaded;
  if (!overloaded) return false;
  if (!overloaded.includes(stream)) overloaded.push(stream);
  return true;
}

/**
 * True when one more message may be processed; otherwise it has been answered RATE_LIMITED with
 * the id of `message`, when it has one (or the connection closed). Every message of a batch counts.
 */
export function withinRate(connection: Connection, message: unknown): boolean {
  const bucket = connection.bucket;
  if (!bucket || bucket.take()) return true;
  const { host } = connection;
  const now = host.clock.now();
  if (now - connection.strikeWindowStart > STRIKE_WINDOW_MS) {
    connection.strikeWindowStart = now;
    connection.strikes = 0;
  }
  if (++connection.strikes > (host.settings.rateLimit || { burst: 0 }).burst) {
    connection.close('rate limit exceeded');
    return false;
  }
  sendError(connection, salvageId(message), new LockstepError('RATE_LIMITED', 'too many messages; slow down', { retryAfterMs: bucket.retryAfterMs }));
  return false;
}

/** The id of a message that could not be parsed, when it has a usable one (to answer it by). */
export function salvageId(message: unknown): RequestId | null {
  if (typeof message !== 'object' || message === null) return null;
  const id = (message as { id?: unknown }).id;
  return typeof id === 'string' || (typeof id === 'number' && Number.isSafeInteger(id)) ? id : null;
}

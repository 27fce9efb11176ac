import { setImmediate as nextTurn } from 'node:timers/promises';
import { LockstepError, frameSize, protocol, type Event, type Frame } from '@lockstep/core';
import type { Answer, Connection } from './connection.js';
import { MIN_PAGE_BYTES } from './handshake.js';
import { DRAIN_CHECK_MS, deferResync, send, write } from './outbox.js';
import { SubscribeGate } from './subscribeGate.js';
import { Subscription } from './subscriptionTable.js';

/**
 * Subscriptions and catch-up, the hub's half of resync: a `subscribe` is answered with exactly the
 * events the client misses after `since` (a page; the rest follows page by page) or a snapshot (in
 * pages when the client takes them), then the subscription joins the live broadcast. Subscribes are
 * admitted through the connection's gate; a stream the hub can no longer serve in order is dropped
 * to a `resync`; grants revoked (`hub.reauthorize`) end subscriptions with `unsubscribed`.
 */

/** Subscribe answers (snapshots, pages of events) prepared at once per connection. */
export const SUBSCRIBE_CONCURRENCY = 8;
/** Subscribes that may wait for a turn; one more and the client is taken for one that does not read. */
export const MAX_WAITING_SUBSCRIBES = 4_096;

export async function subscribe(connection: Connection, params: protocol.SubscribeParams): Promise<Answer> {
  const { stream } = params;
  const subscriptions = connection.subscriptions;
  const generation = subscriptions.begin(stream);
  const place = enterGate(connection);
  let release: () => void;
  try {
    const turn = await place.gate.acquire();
    release = () => {
      turn();
      place.leave();
      subscriptions.finish(stream);
    };
  } catch (error) {
    place.leave();
    subscriptions.finish(stream);
    if (error instanceof LockstepError && error.code === 'RATE_LIMITED') connection.close(error.message);
    throw error;
  }
  try {
    const answer = await prepare(connection, params, generation);
    return {
      result: answer.result,
      after: () => {
        release();
        answer.after?.();
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}

/** Takes a place at the subscribe gate (made on first use); the returned function gives it back, once. */
function enterGate(connection: Connection): { gate: SubscribeGate; leave(): void } {
  const { host, transport } = connection;
  const gate = (connection.subscribeGate ??= new SubscribeGate({
    clock: host.clock,
    concurrency: SUBSCRIBE_CONCURRENCY,
    maxWaiting: MAX_WAITING_SUBSCRIBES,
    backlogged: () => (transport.bufferedAmount ?? 0) > host.settings.maxBufferedBytes,
  }));
  connection.gateUsers++;
  let left = false;
  return {
    gate,
    leave: () => {
      if (left) return;
      left = true;
      if (--connection.gateUsers === 0 && connection.subscribeGate === gate) connection.subscribeGate = undefined;
    },
  };
}

async function prepare(connection: Connection, { stream, since }: protocol.SubscribeParams, generation: number): Promise<Answer> {
  const { host, subscriptions } = connection;
  let grants = connection.grants;
  await host.authorize(connection.identity, stream, 'read');
  // Past the bound, or past the new streams this connection may load: refused before anything loads.
  const reservation = subscriptions.reserve(stream);
  let subscription: Subscription;
  try {
    connection.admitStream(stream);
    const streamHost = host.stream(stream);
    await streamHost.ready;
    // Grants were revoked while this subscribe was being authorized: the answer may be stale.
    while (grants !== connection.grants) {
      grants = connection.grants;
      await host.authorize(connection.identity, stream, 'read');
    }
    if (!subscriptions.isCurrent(stream, generation)) throw new LockstepError('UNAVAILABLE', 'subscription superseded');
    subscription = new Subscription(connection, streamHost);
    subscriptions.install(subscription, reservation);
  } finally {
    subscriptions.release(reservation);
  }
  const streamHost = subscription.host;

  const { oldestRetained } = await host.store.info(stream);
  let events: Event[] | undefined;
  if (since !== undefined && since >= oldestRetained - 1 && since <= streamHost.version) {
    const page = await streamHost.readSince(since + 1, host.settings.catchUpPage);
    // Compaction may have run meanwhile: a page that does not start right after `since` is useless.
    if (page.length === 0 || page[0]!.version === since + 1) events = fitPage(connection, page, (part) => ({ result: { events: part } })).events;
  }
  if (subscription.cancelled || connection.closed) throw subscription.refusal ?? new LockstepError('UNAVAILABLE', 'subscription superseded');

  // The subscription joins the broadcast only once its answer is on the wire (`after`): events
  // committed before that would otherwise reach the client ahead of the answer they follow.
  const after = () => join(connection, subscription);
  if (events === undefined) {
    subscription.cursor = streamHost.version;
    const pages = snapshotPagesOf(connection, streamHost.state);
    if (pages === undefined)
      return { result: { stream, version: streamHost.version, head: streamHost.version, oldestRetained, snapshot: streamHost.state }, after };
    const version = streamHost.version;
    const result: protocol.SubscribeResult = { stream, version, head: version, oldestRetained, snapshotPages: pages.length };
    return { result, after: () => void sendSnapshot(connection, subscription, version, pages) };
  }
  const version = events.length > 0 ? events[events.length - 1]!.version : since!;
  subscription.cursor = version;
  const result: protocol.SubscribeResult = { stream, version, head: streamHost.version, oldestRetained, events };
  return { result, after };
}

/** Right after the subscribe answer: live at once when the stream has not moved since, else catch up first. */
function join(connection: Connection, subscription: Subscription): void {
  subscription.answered = true;
  if (connection.closed) return;
  if (subscription.cancelled) {
    // Revoked between the answer's preparation and its sending: the client hears it now.
    if (subscription.refusal) sendUnsubscribed(connection, subscription.host.name, subscription.refusal);
    return;
  }
  // Still shedding: this stream is resynced with the others once the client reads again.
  if (deferResync(connection, subscription.host.name)) {
    connection.subscriptions.remove(subscription);
    return;
  }
  if (!connection.host.holds(subscription.host)) {
    // Unloaded while idle between the answer and now: the stream lives on in a new host.
    dropSubscription(connection, subscription, 'reloaded');
    return;
  }
  subscription.host.subscribers.add(subscription);
  if (subscription.cursor === subscription.host.version) subscription.live = true;
  else void catchUp(connection, subscription);
}

/** Sends the rest of a large catch-up page by page, then joins the live broadcast. */
async function catchUp(connection: Connection, subscription: Subscription): Promise<void> {
  const { host, transport } = connection;
  const streamHost = subscription.host;
  try {
    while (subscription.cursor < streamHost.version) {
      await nextTurn();
      // Pages go out only as fast as the client reads them.
      while ((transport.bufferedAmount ?? 0) > host.settings.maxBufferedBytes / 4) {
        await new Promise<void>((resolve) => host.clock.setTimeout(resolve, DRAIN_CHECK_MS));
        if (subscription.cancelled || connection.closed) return;
      }
      if (subscription.cancelled || connection.closed) return;
      const read = await streamHost.readSince(subscription.cursor + 1, host.settings.catchUpPage);
      if (subscription.cancelled || connection.closed) return;
      if (read.length === 0 || read[0]!.version !== subscription.cursor + 1) {
        dropSubscription(connection, subscription, 'retention');
        return;
      }
      // `catchUp`: a command's events may be split between pages; they stand for no ack (eventAcks).
      const { events: page, frame } = fitPage(connection, read, (events) => ({
        jsonrpc: '2.0',
        method: protocol.Notifications.events,
        params: { stream: streamHost.name, events, catchUp: true },
      }));
      subscription.cursor = page[page.length - 1]!.version;
      write(connection, frame);
    }
    subscription.live = true;
  } catch (error) {
    host.reportError(error, `catching up ${streamHost.name}`);
    dropSubscription(connection, subscription, 'unavailable');
  }
}

/**
 * The longest head of `events` whose message (`wrap`) encodes within this client's page size — at
 * least one event — and that message's frame. Halves until it fits: a normal page is encoded once.
 */
function fitPage(connection: Connection, events: Event[], wrap: (events: Event[]) => unknown): { events: Event[]; frame: Frame } {
  let part = events;
  for (;;) {
    const frame = connection.codec.encode(wrap(part));
    if (part.length <= 1 || frameSize(frame) <= connection.pageBytes) return { events: part, frame };
    part = part.slice(0, part.length >> 1);
  }
}

/**
 * A state too large for one page, as the pages of its JSON text (never cutting a surrogate pair,
 * which a binary codec could not carry); undefined when it fits in one, or the client takes no pages.
 */
function snapshotPagesOf(connection: Connection, state: unknown): string[] | undefined {
  if (!connection.snapshotPages) return undefined;
  const text = JSON.stringify(state) ?? 'null';
  // Room for the envelope and for escapes of the quotes and backslashes the text holds.
  const size = Math.max(MIN_PAGE_BYTES, Math.floor((connection.pageBytes - 256) / 2));
  if (text.length <= size) return undefined;
  const pages: string[] = [];
  for (let start = 0; start < text.length;) {
    let end = Math.min(start + size, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--;
    pages.push(text.slice(start, end));
    start = end;
  }
  return pages;
}

/** After a paged snapshot's answer: its pages, as fast as the client reads them, then the stream. */
async function sendSnapshot(connection: Connection, subscription: Subscription, version: number, pages: string[]): Promise<void> {
  subscription.answered = true;
  const stream = subscription.host.name;
  for (let page = 0; page < pages.length; page++) {
    if (page > 0 && !(await drained(connection, subscription))) return;
    if (subscription.cancelled || connection.closed) return;
    send(connection, { jsonrpc: '2.0', method: protocol.Notifications.snapshot, params: { stream, version, page, pages: pages.length, data: pages[page]! } });
  }
  join(connection, subscription);
}

/** Waits until the client has read most of what was sent; false if the subscription ended meanwhile. */
async function drained(connection: Connection, subscription: Subscription): Promise<boolean> {
  const { host, transport } = connection;
  await nextTurn();
  while ((transport.bufferedAmount ?? 0) > host.settings.maxBufferedBytes / 4) {
    if (subscription.cancelled || connection.closed) return false;
    await new Promise<void>((resolve) => host.clock.setTimeout(resolve, DRAIN_CHECK_MS));
  }
  return !subscription.cancelled && !connection.closed;
}

/** Ends a subscription the hub can no longer serve in order; the client resubscribes. */
export function dropSubscription(connection: Connection, subscription: Subscription, reason: string): void {
  connection.subscriptions.remove(subscription);
  send(connection, { jsonrpc: '2.0', method: protocol.Notifications.resync, params: { stream: subscription.host.name, reason } });
}

/**
 * The application told the hub that grants changed (`Hub.reauthorize`): every subscription of this
 * connection — live, catching up, or prepared and not yet answered — is authorized again for
 * `read`, and those refused end with an `unsubscribed` notification (or, not yet answered, with the
 * refusal as their answer). Subscribes still being authorized ask again before they subscribe. The
 * services re-check what they give it. Resolves once every check is answered.
 */
export async function reauthorize(connection: Connection): Promise<void> {
  if (connection.closed) return;
  connection.grants++;
  const { host } = connection;
  const checks: Array<Promise<void>> = [];
  for (const subscription of connection.subscriptions.subscriptions()) {
    checks.push(
      host.authorize(connection.identity, subscription.host.name, 'read').then(
        () => {},
        (error: unknown) => revoke(connection, subscription, LockstepError.from(error)),
      ),
    );
  }
  if (connection.servicePeer) checks.push(host.reauthorizePeer(connection.servicePeer));
  await Promise.all(checks);
}

function revoke(connection: Connection, subscription: Subscription, refusal: LockstepError): void {
  // Replaced or ended meanwhile: the one that replaced it was authorized on its own.
  if (connection.closed || !connection.subscriptions.remove(subscription)) return;
  if (subscription.answered) sendUnsubscribed(connection, subscription.host.name, refusal);
  else subscription.refusal = refusal;
}

function sendUnsubscribed(connection: Connection, stream: string, refusal: LockstepError): void {
  const params: protocol.UnsubscribedParams = { stream, error: refusal.toJSON() };
  send(connection, { jsonrpc: '2.0', method: protocol.Notifications.unsubscribed, params });
}

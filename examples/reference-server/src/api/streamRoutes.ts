import type { IncomingMessage } from 'node:http';
import { streamNameSchema, type protocol } from '@lockstep/core';
import { z } from 'zod';
import { wantsEventStream } from '../http/reply.js';
import { HubPeer } from '../hubPeer.js';
import { StreamFeed } from '../streamFeed.js';
import { readReply, readStream, type ApiContext, type ApiDeps, type ApiRoute } from './context.js';
import { parse, parseQuery, versionParamSchema } from './requests.js';

/** `:stream` in a path: `<domain>/<key>` as two segments, or one segment with the slash encoded (`%2F`). */
export const STREAM_PARAM_PATTERN = '[a-z][a-z0-9-]*/[^/]+|[^/]*%2[Ff][^/]*';

const snapshotQuery = z.strictObject({});
const eventsQuery = z.strictObject({ since: versionParamSchema.optional() });

/**
 * Any stream of the hub, read as JSON or followed live as Server-Sent Events
 * (`Accept: text/event-stream`):
 *
 * - `GET /api/streams/:stream` — `{stream, version, state}`; as SSE, a `snapshot` event, then every
 *   event from there on.
 * - `GET /api/streams/:stream/events?since=N` — the events after version N (one catch-up page, or a
 *   snapshot when the hub no longer has them: the `subscribe` answer of lockstep/1); as SSE, those
 *   events, then every later one.
 *
 * Every SSE event has `id: <version>`, so a reconnecting EventSource (`Last-Event-ID`) resumes
 * exactly after the last event it received.
 */
export function streamRoutes({ hub, openEventStream }: ApiDeps): ApiRoute[] {
  /** Follows `stream` on an event stream, from `since` (after a snapshot already sent, or a resume). */
  async function follow(context: ApiContext, stream: string, since: number | undefined, first?: { version: number; state: unknown }): Promise<undefined> {
    // Loaded before the response starts, so that an unknown stream (or a store that is down) is
    // still an ordinary JSON error.
    if (!first) await readStream(hub, context, stream);
    const out = openEventStream(context.request, context.response);
    if (first) out.send({ id: first.version, event: 'snapshot', data: { stream, version: first.version, state: first.state } });
    let feed: StreamFeed;
    try {
      feed = await StreamFeed.start(
        hub,
        stream,
        since,
        {
          snapshot: (version, state) => out.send({ id: version, event: 'snapshot', data: { stream, version, state } }),
          event: (event) => out.send({ id: event.version, data: event }),
          // A client that is not reading: the feed stops until the socket drains, then catches up from
          // the last event written. The buffer holds at most the high-water mark plus one event.
          full: () => out.full,
          whenRoom: (resume) => out.onDrain(resume),
          end: () => out.close(),
          // The request's identity: its grants decide, and a `hub.reauthorize()` that takes them back ends the stream.
        },
        context.identity,
      );
    } catch {
      // The hub is shutting down or the store failed: the client reconnects with Last-Event-ID.
      out.close();
      return undefined;
    }
    out.onClose(() => feed.close());
    return undefined;
  }

  return [
    {
      method: 'GET',
      path: '/api/streams/:stream',
      handler: async (context) => {
        parseQuery(snapshotQuery, context.query);
        const stream = parse(streamNameSchema, context.params['stream'], 'stream name');
        const resumeFrom = lastEventId(context.request);
        if (!wantsEventStream(context.request)) {
          const { state, version } = await readStream(hub, context, stream);
          return readReply(context.request, version, { stream, version, state });
        }
        if (resumeFrom !== undefined) return follow(context, stream, resumeFrom);
        // The state at a version, then the events after it: nothing missed in between.
        const { state, version } = await readStream(hub, context, stream);
        return follow(context, stream, version, { version, state });
      },
    },
    {
      method: 'GET',
      path: '/api/streams/:stream/events',
      handler: async (context) => {
        const { since } = parseQuery(eventsQuery, context.query);
        const stream = parse(streamNameSchema, context.params['stream'], 'stream name');
        if (wantsEventStream(context.request)) return follow(context, stream, lastEventId(context.request) ?? since ?? 0);
        await readStream(hub, context, stream);
        const answer = await catchUp(context, stream, since ?? 0);
        return { status: 200, body: answer, headers: { ETag: `"${answer.version}"` } };
      },
    },
  ];

  /** One `subscribe` answer over a short-lived in-process connection: what a client catching up gets. */
  async function catchUp(context: ApiContext, stream: string, since: number): Promise<protocol.SubscribeResult> {
    const peer = await HubPeer.open(hub, { onNotification: () => {}, identity: context.identity });
    try {
      return (await peer.request('subscribe', { stream, since })) as protocol.SubscribeResult;
    } finally {
      peer.close();
    }
  }
}

/** `Last-Event-ID`: the version of the last event an EventSource received. */
function lastEventId(request: IncomingMessage): number | undefined {
  const header = request.headers['last-event-id'];
  return header === undefined || header === '' ? undefined : parse(versionParamSchema, header, 'Last-Event-ID header');
}

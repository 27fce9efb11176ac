import { z } from 'zod';
import { wantsEventStream } from '../http/reply.js';
import { StreamFeed } from '../streamFeed.js';
import type { ApiContext, ApiDeps, ApiRoute } from './context.js';
import { parseQuery } from './requests.js';

/** How often a status event stream is refreshed when nothing moved it (runtimes and output grow). */
export const DEFAULT_STATUS_INTERVAL_MS = 5_000;

const noQuery = z.strictObject({});

/**
 * Seed 003's daemon status and the profiles a session may run:
 *
 * - `GET /api/status` — uptime, programs running and waiting, totals since start, and per session its
 *   program (pid, started, runtime, output bytes). As Server-Sent Events (`Accept:
 *   text/event-stream`): a `status` event at once, then again whenever a program starts, ends, fails
 *   or queues, a session comes, changes or goes, and every `statusIntervalMs` besides. It is a
 *   computed view, not a stream of events: nothing is stored, each event is the whole status, and a
 *   client that reconnects simply gets the current one (no `id:`, nothing to resume). A client that
 *   does not read is skipped (its next event is the then-current status), never buffered for.
 * - `GET /api/profiles` — `{ profiles: [{ name, description, acceptsPrompt, prompt, default }],
 *   defaultProfile }`, for a client's (the dashboard's) profile picker.
 *
 * Both show the sessions of `tasks/<project>` or what may run there, so both need the `read` grant on
 * that stream, like reading it.
 */
export function daemonRoutes({ hub, daemon, openEventStream, statusIntervalMs = DEFAULT_STATUS_INTERVAL_MS }: ApiDeps): ApiRoute[] {
  if (!daemon) return [];
  const stream = `tasks/${daemon.project}`;

  async function followStatus(context: ApiContext): Promise<undefined> {
    // Checked (and the stream loaded) before the response starts: a refusal is an ordinary JSON error.
    const first = await daemon!.read(context.identity);
    const out = openEventStream(context.request, context.response);
    out.send({ event: 'status', data: first });
    let scheduled = false;
    let sending = false;
    let waitingForDrain = false;
    /** A change came while a status was being read: read again once it is sent. */
    let again = false;
    const push = () => {
      if (scheduled || out.closed) return;
      scheduled = true;
      setImmediate(() => {
        scheduled = false;
        if (out.closed) return;
        if (sending) {
          again = true;
          return;
        }
        if (out.full) {
          // A reader that is not keeping up gets the status once it drains, not a backlog of old ones.
          if (!waitingForDrain) {
            waitingForDrain = true;
            out.onDrain(() => {
              waitingForDrain = false;
              push();
            });
          }
          return;
        }
        sending = true;
        daemon!.read(context.identity).then(
          (status) => {
            sending = false;
            if (!out.closed) out.send({ event: 'status', data: status });
            if (again) {
              again = false;
              push();
            }
          },
          () => out.close(),
        );
      });
    };
    const stopChanges = daemon!.onChange(push);
    const timer = setInterval(push, statusIntervalMs);
    timer.unref();
    let feed: StreamFeed | undefined;
    out.onClose(() => {
      stopChanges();
      clearInterval(timer);
      feed?.close();
    });
    try {
      // Sessions created, renamed, linked, deleted; and, as the request's identity, a revoked grant ends the stream.
      const { version } = await hub.read(stream);
      feed = await StreamFeed.start(hub, stream, version, { snapshot: push, event: push, end: () => out.close() }, context.identity);
      if (out.closed) feed.close();
    } catch {
      out.close();
    }
    return undefined;
  }

  return [
    {
      method: 'GET',
      path: '/api/status',
      handler: async (context) => {
        parseQuery(noQuery, context.query);
        if (wantsEventStream(context.request)) return followStatus(context);
        return { status: 200, body: await daemon.read(context.identity) };
      },
    },
    {
      method: 'GET',
      path: '/api/profiles',
      handler: async (context) => {
        parseQuery(noQuery, context.query);
        await hub.authorize(context.identity, stream, 'read');
        const { profiles } = daemon;
        if (!profiles) {
          // Without terminals no session runs anything here: there is nothing to pick.
          return { status: 200, body: { profiles: [], defaultProfile: null, terminals: false } };
        }
        return { status: 200, body: { profiles: profiles.list(), defaultProfile: profiles.defaultName, terminals: true } };
      },
    },
  ];
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { LockstepError } from '@lockstep/core';
import type { Identity } from '@lockstep/server';
import { readJsonBody } from '../http/body.js';
import { HttpError } from '../http/httpError.js';
import type { RateLimiter } from '../http/rateLimiter.js';
import { sendJson } from '../http/reply.js';
import { Router } from '../http/router.js';
import type { ApiContext, ApiDeps, ApiRoute } from './context.js';
import { daemonRoutes } from './daemonRoutes.js';
import { orchestrationRoutes } from './orchestrationRoutes.js';
import { STREAM_PARAM_PATTERN, streamRoutes } from './streamRoutes.js';
import { projectRoutes } from './projectRoutes.js';
import { taskRoutes } from './taskRoutes.js';

export interface ApiHandlerOptions {
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
  /** Per-client request rate; undefined turns it off. */
  rateLimiter: RateLimiter | undefined;
  /** Unexpected failures (answered 500 without details). */
  onError(error: unknown, context: string): void;
}

/** Every route of the REST API, in the order they are matched. */
export function apiRoutes(deps: ApiDeps): ApiRoute[] {
  const routes: ApiRoute[] = [...orchestrationRoutes(deps), ...taskRoutes(deps), ...projectRoutes(deps), ...daemonRoutes(deps), ...streamRoutes(deps)];
  const index: ApiRoute = {
    method: 'GET',
    path: '/api',
    handler: async () => ({
      status: 200,
      body: { routes: routes.map(({ method, path }) => `${method} ${path}`), docs: 'docs/reference-server.md' },
    }),
  };
  return [index, ...routes];
}

/**
 * Serves `/api/*` for a caller the server has authenticated: rate limit, route, read and check the body, run the handler, and turn whatever it
 * throws into `{ error: { code, message, details? } }` with the HTTP status of the code.
 */
export function createApiHandler(
  deps: ApiDeps,
  options: ApiHandlerOptions,
): (request: IncomingMessage, response: ServerResponse, identity: Identity | undefined) => Promise<void> {
  const router = new Router(apiRoutes(deps), { stream: STREAM_PARAM_PATTERN });

  return async (request, response, identity) => {
    try {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const retryAfterMs = options.rateLimiter?.take(request.socket.remoteAddress ?? 'unknown') ?? 0;
      if (retryAfterMs > 0) throw new LockstepError('RATE_LIMITED', 'too many requests; retry later', { retryAfterMs });
      const match = router.match(request.method ?? 'GET', url.pathname);
      if (match.kind === 'notFound') throw HttpError.of(404, 'METHOD_NOT_FOUND', `no route ${request.method} ${url.pathname}`, { path: url.pathname });
      if (match.kind === 'wrongMethod') {
        throw HttpError.of(
          405,
          'METHOD_NOT_FOUND',
          `${url.pathname} does not answer ${request.method}`,
          { allowed: match.allowed },
          { Allow: match.allowed.join(', ') },
        );
      }
      let body: Promise<unknown> | undefined;
      const context: ApiContext = {
        request,
        response,
        params: match.params,
        query: url.searchParams,
        identity,
        body: () => (body ??= readJsonBody(request, options.maxBodyBytes)),
      };
      const reply = await match.route.handler(context);
      if (reply) sendJson(request, response, reply);
    } catch (error) {
      const failure = HttpError.from(error);
      if (failure.status === 500) options.onError(error, `${request.method} ${request.url}`);
      if (response.headersSent) {
        // An event stream that had already started: nothing else can be said on it.
        response.destroy();
        return;
      }
      sendJson(request, response, { status: failure.status, body: failure.toJSON(), headers: { ...failure.headers } });
      if (failure.headers['Connection'] === 'close') request.resume();
    }
  };
}

import { ErrorCodes, LockstepError, type ErrorCode } from '@lockstep/core';
import { API_PREFIX } from '../contract.js';

/**
 * The REST API as the dashboard reads it: the page's own server, signed in by the login cookie.
 * Used for what lockstep/1 has no stream for — the list of projects and the session profiles;
 * everything else (every change included) goes over the WebSocket.
 */

/** The routes the server lists at `GET /api` (`"GET /api/projects"`, …): fetched once per page. */
let routes: Promise<ReadonlySet<string>> | undefined;

/**
 * Whether the server has `method path` (optional routes: a server without them still serves the
 * dashboard, which leaves out what needs them). A failed lookup is tried again next time.
 */
export async function hasRoute(method: string, path: string): Promise<boolean> {
  routes ??= getJson<{ routes?: unknown }>(API_PREFIX).then(
    (index) => new Set(Array.isArray(index?.routes) ? index.routes.filter((route): route is string => typeof route === 'string') : []),
    (error: unknown) => {
      routes = undefined;
      throw error;
    },
  );
  return (await routes).has(`${method} ${path}`);
}

/** `GET path` as JSON; undefined when the server has no such route (404); else the server's refusal as a LockstepError. */
export async function getJson<T>(path: string): Promise<T | undefined> {
  const response = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  if (response.status === 404) return undefined;
  return (await answer(response)) as T;
}

async function answer(response: Response): Promise<unknown> {
  const body: unknown = await response.json().catch(() => undefined);
  if (response.ok) return body;
  const error = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const code: ErrorCode = typeof error?.code === 'string' && Object.hasOwn(ErrorCodes, error.code) ? (error.code as ErrorCode) : 'INTERNAL_ERROR';
  const message = typeof error?.message === 'string' ? error.message : `${response.status} ${response.statusText}`;
  throw new LockstepError(code, message, error?.details);
}

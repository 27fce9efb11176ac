import { LockstepError } from '@lockstep/core';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/** One row of a route table: a method, a path pattern (`/api/tasks/:id`) and what answers it. */
export interface Route<Handler> {
  method: HttpMethod;
  path: string;
  handler: Handler;
}

export type RouteMatch<Handler> =
  | { kind: 'found'; route: Route<Handler>; params: Record<string, string> }
  /** The path exists, but not for this method: answer 405 with these in `Allow`. */
  | { kind: 'wrongMethod'; allowed: HttpMethod[] }
  | { kind: 'notFound' };

/**
 * What a `:name` parameter matches, as a regular expression over the raw (still percent-encoded)
 * path. By default one segment. A parameter may match more: `:stream` takes `<domain>/<key>` as two
 * segments (`/api/streams/tasks/default`) or one encoded segment (`/api/streams/tasks%2Fdefault`).
 */
export type ParamPatterns = Readonly<Record<string, string>>;

const SEGMENT = '[^/]+';

interface CompiledRoute<Handler> {
  route: Route<Handler>;
  regex: RegExp;
  names: string[];
}

/**
 * A table-driven router: routes are tried in order and the first whose pattern matches the path
 * wins. Parameters are percent-decoded after matching (so an encoded `/` in a workspace id stays
 * inside its segment); a malformed escape is `INVALID_PARAMS`.
 */
export class Router<Handler> {
  readonly #routes: CompiledRoute<Handler>[];

  constructor(routes: readonly Route<Handler>[], params: ParamPatterns = {}) {
    this.#routes = routes.map((route) => {
      const names: string[] = [];
      const source = route.path
        .split('/')
        .map((part) => {
          if (!part.startsWith(':')) return escapeRegExp(part);
          const name = part.slice(1);
          names.push(name);
          return `(${params[name] ?? SEGMENT})`;
        })
        .join('/');
      return { route, regex: new RegExp(`^${source}/?$`), names };
    });
  }

  /** Finds the route for a method and a raw path (no query string). */
  match(method: string, rawPath: string): RouteMatch<Handler> {
    const allowed = new Set<HttpMethod>();
    for (const { route, regex, names } of this.#routes) {
      const found = regex.exec(rawPath);
      if (!found) continue;
      if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) {
        allowed.add(route.method);
        if (route.method === 'GET') allowed.add('HEAD');
        continue;
      }
      const params: Record<string, string> = {};
      names.forEach((name, index) => (params[name] = decodeParam(name, found[index + 1]!)));
      return { kind: 'found', route, params };
    }
    return allowed.size > 0 ? { kind: 'wrongMethod', allowed: [...allowed] } : { kind: 'notFound' };
  }
}

function decodeParam(name: string, raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new LockstepError('INVALID_PARAMS', `the ${name} in the path is not valid percent-encoding`, { param: name });
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { FailureWindow, LockstepError, type Clock, type FailureLimit } from '@lockstep/core';
import type { Identity } from '@lockstep/server';
import type { HostCheck } from '@lockstep/ws/server';
import { HttpError } from './httpError.js';

/** Methods that change something: they need more than a cookie (see {@link Access.check}). */
const UNSAFE_METHODS: ReadonlySet<string> = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** A header a page on another site cannot send without a CORS preflight, which this server never grants. */
export const REQUEST_HEADER = 'X-Lockstep-Request';

/** Sent with every answer: nothing is sniffed, framed, or told where it came from. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  // JSON and text answers: nothing may run, load or frame them.
  'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

/**
 * The policy of the HTML pages (dashboard, login): scripts and styles from this server only (the
 * dashboard's terminal sets inline styles, hence `'unsafe-inline'` for styles, never for scripts),
 * connections to this server only (`'self'` covers its `ws://`), and never inside a frame.
 */
export const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "object-src 'none'",
].join('; ');

export interface AccessOptions {
  hosts: HostCheck;
  /**
   * Who presents `token` (from `Authorization: Bearer` or the login cookie); undefined or a throw
   * refuses. Undefined as a whole: the server is open (`--insecure-no-auth`).
   */
  authenticate: ((token: string | undefined, info: Readonly<Record<string, unknown>>) => Promise<Identity | undefined>) | undefined;
  /** Refused tokens per address before the address is refused without a check; `false` turns it off. */
  failureLimit: FailureLimit | false;
  /** The login cookie's name, once the port is known (it carries the port: cookies are shared by every port of a host). */
  cookieName: () => string;
  clock: Pick<Clock, 'now'>;
}

/** Who a request comes from, and how it proved it. */
export interface Caller {
  identity: Identity | undefined;
  via: 'bearer' | 'cookie' | 'open';
}

/**
 * The checks every HTTP request and WebSocket upgrade of the reference server passes, in order:
 * the `Host` is one of the server's names (DNS rebinding), a browser `Origin` is this server's
 * (cross-site requests), the caller presents the token (`Authorization: Bearer`, or the cookie the
 * login page set), and a request that changes something with only the cookie comes from this
 * server's own pages: same-site `Origin` present and a JSON content type or the
 * `X-Lockstep-Request` header, which no other site can send without a CORS preflight.
 */
export class Access {
  readonly #options: AccessOptions;
  readonly #failures: FailureWindow | undefined;

  constructor(options: AccessOptions) {
    this.#options = options;
    this.#failures = options.failureLimit ? new FailureWindow(options.clock, options.failureLimit) : undefined;
  }

  get open(): boolean {
    return this.#options.authenticate === undefined;
  }

  get cookieName(): string {
    return this.#options.cookieName();
  }

  /** Host and Origin: throws a 403 for a request this server must not answer at all. */
  checkSite(request: IncomingMessage): void {
    const { hosts } = this.#options;
    if (!hosts.allowsHost(request.headers.host)) {
      throw HttpError.of(403, 'FORBIDDEN', `this server does not answer to host ${JSON.stringify(request.headers.host ?? '')}`);
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !hosts.allowsOrigin(origin)) {
      throw HttpError.of(403, 'FORBIDDEN', `requests from ${JSON.stringify(origin)} are refused: only this server's own pages may call it`);
    }
  }

  /** The caller of a request, or a 401/403/429 HttpError. */
  async check(request: IncomingMessage): Promise<Caller> {
    const authenticate = this.#options.authenticate;
    if (!authenticate) return { identity: undefined, via: 'open' };
    const bearer = bearerOf(request);
    const cookie = bearer === undefined ? cookieOf(request.headers.cookie, this.cookieName) : undefined;
    const token = bearer ?? cookie;
    if (token === undefined) {
      throw HttpError.of(
        401,
        'UNAUTHORIZED',
        'this server needs its token: send Authorization: Bearer <token>, or open the login URL it printed at start',
        undefined,
        {
          'WWW-Authenticate': 'Bearer',
        },
      );
    }
    const identity = await this.authenticateToken(token, request);
    const via = bearer !== undefined ? 'bearer' : 'cookie';
    if (via === 'cookie' && UNSAFE_METHODS.has(request.method ?? 'GET')) checkOwnPage(request);
    return { identity, via };
  }

  /** Checks a token presented by `request`'s address (throttled per address); throws 401 or 429. */
  async authenticateToken(token: string | undefined, request: IncomingMessage): Promise<Identity | undefined> {
    const authenticate = this.#options.authenticate;
    if (!authenticate) return undefined;
    const address = request.socket.remoteAddress ?? 'unknown';
    const retryAfterMs = this.#failures?.retryAfterMs(address) ?? 0;
    if (retryAfterMs > 0) {
      throw new LockstepError('RATE_LIMITED', 'too many refused tokens from this address; retry later', { retryAfterMs });
    }
    let identity: Identity | undefined;
    try {
      identity = await authenticate(token, { transport: 'http', remoteAddress: address });
    } catch {
      identity = undefined;
    }
    if (identity === undefined) {
      this.#failures?.fail(address);
      throw HttpError.of(401, 'UNAUTHORIZED', 'the token was refused', undefined, { 'WWW-Authenticate': 'Bearer error="invalid_token"' });
    }
    return identity;
  }

  /** `Set-Cookie` for a token that was accepted: sent only to this host, never to scripts or other sites. */
  loginCookie(token: string): string {
    return `${this.cookieName}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${7 * 24 * 3600}`;
  }

  /** The login cookie's token in a `Cookie` header (for WebSocket upgrades from the dashboard). */
  cookieToken(header: string | undefined): string | undefined {
    return cookieOf(header, this.cookieName);
  }
}

/** Sets the headers every answer carries. */
export function setSecurityHeaders(response: ServerResponse): void {
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
}

/**
 * A change made with the cookie alone must come from this server's pages: browsers send `Origin`
 * with every cross-site and every same-origin unsafe request, and a page of another site can send
 * neither a JSON content type nor a custom header without a preflight.
 */
function checkOwnPage(request: IncomingMessage): void {
  if (request.headers.origin === undefined) {
    throw HttpError.of(403, 'FORBIDDEN', 'a change made with the login cookie needs an Origin header (send Authorization: Bearer from scripts)');
  }
  const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  const json = /^application\/(?:[\w.-]+\+)?json$/.test(type);
  if (!json && request.headers[REQUEST_HEADER.toLowerCase()] === undefined) {
    throw HttpError.of(
      403,
      'FORBIDDEN',
      `a change made with the login cookie needs Content-Type: application/json or the ${REQUEST_HEADER} header, even without a body`,
    );
  }
}

function bearerOf(request: IncomingMessage): string | undefined {
  const header = request.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!match) throw HttpError.of(401, 'UNAUTHORIZED', 'the Authorization header is not a Bearer token', undefined, { 'WWW-Authenticate': 'Bearer' });
  return match[1]!;
}

function cookieOf(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const at = part.indexOf('=');
    if (at < 0 || part.slice(0, at).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(at + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

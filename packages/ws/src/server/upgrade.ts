import { STATUS_CODES, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { BEARER_SUBPROTOCOL_PREFIX, isSubprotocol, type Subprotocol } from '../subprotocols.js';

/** Which browser origins may connect: a list of exact origins, or a predicate. */
export type AllowedOrigins = readonly string[] | ((origin: string) => boolean);

/** What the `authenticate` hook of the WebSocket server sees of an upgrade request. */
export interface UpgradeRequest {
  /** From `Authorization: Bearer …`, else from a `lockstep.bearer.<base64url>` subprotocol entry. */
  token?: string;
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
  /** The request URL (path and query), e.g. for a token or tenant in the query string. */
  url: string;
}

/** An upgrade request refused before it became a WebSocket: answered with an HTTP status. */
export class UpgradeRefusal extends Error {
  override readonly name = 'UpgradeRefusal';
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 429 | 503,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/** Checks the Origin header. A request without one (a Node, Python or Rust client) is allowed. */
export function checkOrigin(request: IncomingMessage, allowed: AllowedOrigins | undefined): string | undefined {
  const origin = request.headers.origin;
  if (origin === undefined || allowed === undefined) return origin;
  const ok = typeof allowed === 'function' ? safePredicate(allowed, origin) : allowed.some((entry) => entry.toLowerCase() === origin.toLowerCase());
  if (!ok) throw new UpgradeRefusal(403, `origin ${origin} is not allowed`);
  return origin;
}

function safePredicate(predicate: (origin: string) => boolean, origin: string): boolean {
  try {
    return predicate(origin) === true;
  } catch {
    return false;
  }
}

/** The entries of `Sec-WebSocket-Protocol`, in the client's order. */
export function offeredSubprotocols(request: IncomingMessage): string[] {
  const header = request.headers['sec-websocket-protocol'];
  if (header === undefined) return [];
  return header
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '');
}

/** The first lockstep subprotocol the client offers that the server speaks, or a 400 refusal. */
export function chooseSubprotocol(offered: readonly string[], accepted: readonly Subprotocol[]): Subprotocol {
  const chosen = offered.find((entry): entry is Subprotocol => isSubprotocol(entry) && accepted.includes(entry));
  if (chosen !== undefined) return chosen;
  const lockstep = offered.filter((entry) => !entry.startsWith(BEARER_SUBPROTOCOL_PREFIX));
  const what = lockstep.length === 0 ? 'no subprotocol was offered' : `unsupported subprotocol ${lockstep.join(', ')}`;
  throw new UpgradeRefusal(400, `${what}: offer one of ${accepted.join(', ')} in Sec-WebSocket-Protocol`, {
    'X-Lockstep-Subprotocols': accepted.join(', '),
  });
}

/** The bearer token of a request: the Authorization header wins over a subprotocol entry. */
export function bearerToken(request: IncomingMessage, offered: readonly string[]): string | undefined {
  const authorization = request.headers.authorization;
  if (authorization !== undefined) {
    const match = /^Bearer[ ]+(\S.*)$/i.exec(authorization.trim());
    if (!match) throw new UpgradeRefusal(401, 'the Authorization header is not a Bearer token', { 'WWW-Authenticate': 'Bearer' });
    return match[1]!;
  }
  const entry = offered.find((value) => value.startsWith(BEARER_SUBPROTOCOL_PREFIX));
  if (entry === undefined) return undefined;
  const encoded = entry.slice(BEARER_SUBPROTOCOL_PREFIX.length);
  if (!/^[A-Za-z0-9_-]*$/.test(encoded)) throw new UpgradeRefusal(401, 'the bearer subprotocol entry is not base64url', { 'WWW-Authenticate': 'Bearer' });
  return Buffer.from(encoded, 'base64url').toString('utf8');
}

/** Answers an upgrade request with an HTTP error and closes the socket. */
export function refuseUpgrade(socket: Duplex, refusal: UpgradeRefusal): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = `${refusal.message}\n`;
  const headers = {
    Connection: 'close',
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(Buffer.byteLength(body)),
    ...refusal.headers,
  };
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.once('finish', () => socket.destroy());
  socket.end(`HTTP/1.1 ${refusal.status} ${STATUS_CODES[refusal.status]}\r\n${head}\r\n${body}`);
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { gzipSync } from 'node:zlib';

/** Bodies at least this large are gzipped for clients that accept it. */
const GZIP_MIN_BYTES = 1024;

/** What a handler answers: a status, a JSON body and extra headers. */
export interface JsonReply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

/** Sends a JSON body (gzipped when large and accepted; none for HEAD, 204 and 304). */
export function sendJson(request: IncomingMessage, response: ServerResponse, reply: JsonReply): void {
  if (reply.status === 204 || reply.status === 304) {
    response.writeHead(reply.status, reply.headers);
    response.end();
    return;
  }
  const text = `${JSON.stringify(reply.body)}\n`;
  let body = Buffer.from(text, 'utf8');
  const headers: Record<string, string> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    ...reply.headers,
  };
  if (body.length >= GZIP_MIN_BYTES && acceptsGzip(request)) {
    body = gzipSync(body);
    headers['Content-Encoding'] = 'gzip';
    headers['Vary'] = 'Accept-Encoding';
  }
  headers['Content-Length'] = String(body.length);
  response.writeHead(reply.status, headers);
  response.end(request.method === 'HEAD' ? undefined : body);
}

export function acceptsGzip(request: IncomingMessage): boolean {
  return /\bgzip\b/i.test(request.headers['accept-encoding'] ?? '');
}

/** Whether the client asked for Server-Sent Events (`Accept: text/event-stream`). */
export function wantsEventStream(request: IncomingMessage): boolean {
  return /\btext\/event-stream\b/i.test(request.headers.accept ?? '');
}

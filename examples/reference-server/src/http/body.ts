import type { IncomingMessage } from 'node:http';
import { HttpError } from './httpError.js';

/** `application/json`, or any `application/<something>+json`, with no charset or UTF-8. */
const JSON_MEDIA_TYPE = /^application\/(?:[\w.-]+\+)?json$/i;

/**
 * Reads a request body as JSON. Answers `undefined` when there is no body. Refuses, before parsing:
 * a body larger than `maxBytes` (413 `PAYLOAD_TOO_LARGE`, checked against `Content-Length` first and
 * then while reading), a body that is not `application/json` in UTF-8 (415 `INVALID_REQUEST`);
 * and JSON that does not parse (400 `PARSE_ERROR`).
 */
export async function readJsonBody(request: IncomingMessage, maxBytes: number): Promise<unknown> {
  const declared = request.headers['content-length'];
  const hasBody = request.headers['transfer-encoding'] !== undefined || (declared !== undefined && declared !== '0');
  if (!hasBody) return undefined;
  checkContentType(request.headers['content-type']);
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge(maxBytes);

  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks, size));
  } catch {
    throw HttpError.of(400, 'PARSE_ERROR', 'the body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw HttpError.of(400, 'PARSE_ERROR', `the body is not valid JSON: ${(error as Error).message}`);
  }
}

function checkContentType(header: string | undefined): void {
  const [type = '', ...parameters] = (header ?? '').split(';').map((part) => part.trim());
  const charset = parameters.find((parameter) => /^charset=/i.test(parameter))?.slice('charset='.length);
  if (!JSON_MEDIA_TYPE.test(type) || (charset !== undefined && !/^"?utf-8"?$/i.test(charset))) {
    throw HttpError.of(
      415,
      'INVALID_REQUEST',
      `request bodies are JSON: send Content-Type: application/json (got ${header === undefined ? 'none' : JSON.stringify(header)})`,
      {
        contentType: header ?? null,
      },
    );
  }
}

function tooLarge(maxBytes: number): HttpError {
  // The rest of the body is not read: the connection is closed after the answer.
  return HttpError.of(413, 'PAYLOAD_TOO_LARGE', `the body is larger than ${maxBytes} bytes`, { limit: maxBytes }, { Connection: 'close' });
}

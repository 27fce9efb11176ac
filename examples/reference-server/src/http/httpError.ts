import { LockstepError, type ErrorCode } from '@lockstep/core';

/**
 * The HTTP status of each lockstep/1 error code, for the REST API. The body always carries the code
 * itself (`{ error: { code, message, details? } }`); the status is what HTTP tooling (retries,
 * proxies, `curl --fail`) looks at. See docs/protocol.md, "Errors over REST".
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  PARSE_ERROR: 400,
  INVALID_REQUEST: 400,
  METHOD_NOT_FOUND: 404,
  INVALID_PARAMS: 400,
  INTERNAL_ERROR: 500,
  UNSUPPORTED_PROTOCOL: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  UNKNOWN_STREAM: 404,
  VERSION_CONFLICT: 409,
  // 404 instead when the reason is `<entity>.notFound` (see httpStatusOf).
  COMMAND_REJECTED: 409,
  RATE_LIMITED: 429,
  PAYLOAD_TOO_LARGE: 413,
  HANDSHAKE_REQUIRED: 400,
  COMMAND_ID_CONFLICT: 409,
  UNAVAILABLE: 503,
  LIMIT_EXCEEDED: 429,
  INCOMPATIBLE_APP: 400,
  // The hub waited for another party (a client serving a method) that did not answer in time.
  TIMEOUT: 504,
  // The caller went away; nginx's "client closed request", never seen by the caller itself.
  CANCELLED: 499,
};

/** An error answer: a LockstepError with the HTTP status (and headers) it is sent with. */
export class HttpError extends Error {
  override readonly name = 'HttpError';

  constructor(
    readonly status: number,
    readonly error: LockstepError,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(error.message);
  }

  /** A refusal whose status is not the code's usual one (405, 415, …). */
  static of(status: number, code: ErrorCode, message: string, data?: unknown, headers?: Record<string, string>): HttpError {
    return new HttpError(status, new LockstepError(code, message, data), headers);
  }

  /** Anything thrown by a handler, as the answer to send; unknown errors become a bare 500. */
  static from(error: unknown): HttpError {
    if (error instanceof HttpError) return error;
    const lockstep = LockstepError.from(error);
    const headers: Record<string, string> = {};
    if (lockstep.code === 'RATE_LIMITED') headers['Retry-After'] = String(retryAfterSeconds(lockstep.data));
    if (lockstep.code === 'UNAVAILABLE') headers['Retry-After'] = '1';
    return new HttpError(httpStatusOf(lockstep), lockstep, headers);
  }

  /** The response body: `{ error: { code, message, details? } }`. */
  toJSON(): { error: { code: ErrorCode; message: string; details?: unknown } } {
    const { code, message, data } = this.error;
    return { error: data === undefined ? { code, message } : { code, message, details: data } };
  }
}

/** A rejection of a missing entity (`task.notFound`, `link.notFound`) is 404; other rejections 409. */
export function httpStatusOf(error: LockstepError): number {
  if (error.code === 'COMMAND_REJECTED' && /\.notFound$/.test(reasonOf(error) ?? '')) return 404;
  return HTTP_STATUS_BY_CODE[error.code];
}

function reasonOf(error: LockstepError): string | undefined {
  const data = error.data as { reason?: unknown } | undefined;
  return typeof data?.reason === 'string' ? data.reason : undefined;
}

function retryAfterSeconds(data: unknown): number {
  const ms = (data as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) ? Math.max(1, Math.ceil(ms / 1000)) : 1;
}

import { LockstepError, httpStatusOf, type ErrorCode } from '@lockstep/core';

/** The status of each code, and its one refinement: `@lockstep/core`'s, re-exported for the REST layer. */
export { HTTP_STATUS_BY_CODE, httpStatusOf } from '@lockstep/core';

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

function retryAfterSeconds(data: unknown): number {
  const ms = (data as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  return typeof ms === 'number' && Number.isFinite(ms) ? Math.max(1, Math.ceil(ms / 1000)) : 1;
}

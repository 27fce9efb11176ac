import { describe, expect, expectTypeOf, it } from 'vitest';
import { ErrorCodes, HTTP_STATUS_BY_CODE, LockstepError, RETRYABLE_CODES, httpStatusOf, isLockstepError, type ErrorCode } from './errors.js';

describe('typed errors', () => {
  it('narrows an error to its code and types its data', () => {
    const error: unknown = LockstepError.fromWire({ code: -32005, message: 'stream tasks/p is at version 7, not 6', data: { currentVersion: 7 } });
    expect(isLockstepError(error)).toBe(true);
    expect(isLockstepError(error, 'RATE_LIMITED')).toBe(false);
    if (!isLockstepError(error, 'VERSION_CONFLICT')) throw new Error('not narrowed');
    expectTypeOf(error.data).toEqualTypeOf<{ currentVersion: number } | undefined>();
    expect(error.data?.currentVersion).toBe(7);
    expect(isLockstepError(new Error('plain'))).toBe(false);
  });

  it('keeps a cause in the process and never puts it on the wire', () => {
    const cause = new Error('ECONNRESET from the store');
    const error = new LockstepError('UNAVAILABLE', 'stream tasks/p is unavailable; retry the command', undefined, { cause });
    expect(error.cause).toBe(cause);
    expect(error.toJSON()).toEqual({ code: -32011, message: 'stream tasks/p is unavailable; retry the command' });
    expect(JSON.stringify(error.toJSON())).not.toContain('ECONNRESET');
  });

  it('has an HTTP status for every code, 404 for a rejection of a missing entity', () => {
    expect(Object.keys(HTTP_STATUS_BY_CODE).sort()).toEqual(Object.keys(ErrorCodes).sort());
    expect(httpStatusOf(new LockstepError('COMMAND_REJECTED', 'no task task_404', { reason: 'task.notFound', id: 'task_404' }))).toBe(404);
    expect(httpStatusOf(new LockstepError('COMMAND_REJECTED', 'no', { reason: 'stateBudgetExceeded' }))).toBe(409);
    expect(httpStatusOf(new LockstepError('RATE_LIMITED', 'slow down', { retryAfterMs: 250 }))).toBe(429);
  });

  it('calls exactly the passing conditions retryable', () => {
    expect([...RETRYABLE_CODES].sort()).toEqual<ErrorCode[]>(['RATE_LIMITED', 'UNAVAILABLE']);
  });
});

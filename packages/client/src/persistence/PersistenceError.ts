/**
 * Why a persistent client could not read or write its storage:
 *
 * - `QUOTA_EXCEEDED`: the browser's or the disk's space is used up;
 * - `PERMISSION_DENIED`: the storage may not be used (private mode, a read-only folder);
 * - `LOCKED`: another tab or process holds the same storage;
 * - `CORRUPT`: a stored record failed its checksum or its schema (it is ignored);
 * - `UNSUPPORTED_FORMAT`: a record written by a newer release (it is ignored);
 * - `UNAVAILABLE`: any other failure of the storage.
 *
 * None of them stops the client: it goes on in memory and says so in `status.storage` and
 * `status.lastError`.
 */
export type PersistenceErrorCode = 'QUOTA_EXCEEDED' | 'PERMISSION_DENIED' | 'LOCKED' | 'CORRUPT' | 'UNSUPPORTED_FORMAT' | 'UNAVAILABLE';

export class PersistenceError extends Error {
  override readonly name = 'PersistenceError';

  constructor(
    readonly code: PersistenceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Normalises what a storage threw: DOMException names and Node error codes mapped to a code. */
  static from(error: unknown): PersistenceError {
    if (error instanceof PersistenceError) return error;
    const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
    const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
    const message = error instanceof Error ? error.message : String(error);
    if (name === 'QuotaExceededError' || code === 'ENOSPC' || code === 'EDQUOT') return new PersistenceError('QUOTA_EXCEEDED', message, { cause: error });
    if (name === 'SecurityError' || name === 'NotAllowedError' || code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return new PersistenceError('PERMISSION_DENIED', message, { cause: error });
    }
    return new PersistenceError('UNAVAILABLE', message, { cause: error });
  }
}

/**
 * Why a sidecar cannot be used — the host's signal to fall back to working without it:
 *
 * - `not-found`: the executable is missing or cannot be run (ENOENT, EACCES, ENOTDIR);
 * - `unsupported-protocol`: the child answered `hello` with UNSUPPORTED_PROTOCOL, or with a protocol
 *   version other than the host's (`data` holds what it said, such as `{ supported: [2] }`);
 * - `gave-up`: the child kept dying, and the sidecar stopped restarting it (`maxRestarts`);
 * - `closed`: `sidecar.close()` was called.
 */
export type SidecarUnavailableReason = 'not-found' | 'unsupported-protocol' | 'gave-up' | 'closed';

export class SidecarUnavailableError extends Error {
  override readonly name = 'SidecarUnavailableError';
  readonly reason: SidecarUnavailableReason;
  readonly data: unknown;

  constructor(reason: SidecarUnavailableReason, message: string, options: { cause?: unknown; data?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    this.data = options.data;
  }
}

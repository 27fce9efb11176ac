/**
 * The error codes of lockstep/1. Each has a stable string `code` (what programs branch on) and the
 * JSON-RPC numeric code it travels with. The table is published in docs/protocol.md; codes are never
 * renumbered, only added.
 */
export const ErrorCodes = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  UNSUPPORTED_PROTOCOL: -32001,
  UNAUTHORIZED: -32002,
  FORBIDDEN: -32003,
  UNKNOWN_STREAM: -32004,
  VERSION_CONFLICT: -32005,
  COMMAND_REJECTED: -32006,
  RATE_LIMITED: -32007,
  PAYLOAD_TOO_LARGE: -32008,
  HANDSHAKE_REQUIRED: -32009,
  COMMAND_ID_CONFLICT: -32010,
  UNAVAILABLE: -32011,
  LIMIT_EXCEEDED: -32012,
  /** `hello`: the peer's application (name and version) is not one this side accepts. */
  INCOMPATIBLE_APP: -32013,
  /** A call got no answer within its `timeoutMs`; whether the callee ran it is unknown. */
  TIMEOUT: -32014,
  /** The caller cancelled the call (`$/cancelRequest`); LSP's `RequestCancelled`. */
  CANCELLED: -32800,
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/**
 * The `data` each code carries (docs/protocol.md, "Errors"), for {@link isLockstepError}. Codes not
 * listed carry none, or data whose shape is the sender's (a service handler's own error).
 */
export interface ErrorDataByCode {
  INVALID_PARAMS: { issues?: ReadonlyArray<{ code: string; path: ReadonlyArray<PropertyKey>; message: string }>; reason?: string; [detail: string]: unknown };
  UNSUPPORTED_PROTOCOL: { supported: number[] };
  FORBIDDEN: { stream?: string; method?: string; clientId?: string; action?: string };
  UNKNOWN_STREAM: { domains?: string[]; reason?: string; [detail: string]: unknown };
  VERSION_CONFLICT: { currentVersion: number };
  COMMAND_REJECTED: { reason: string; [detail: string]: unknown };
  RATE_LIMITED: { retryAfterMs: number; limit?: string };
  PAYLOAD_TOO_LARGE: { limit: number };
  COMMAND_ID_CONFLICT: { id: string };
  LIMIT_EXCEEDED: { limit: string; max: number };
  INCOMPATIBLE_APP: { app?: unknown; peer?: unknown };
  METHOD_NOT_FOUND: { reason?: string; [detail: string]: unknown };
  UNAVAILABLE: { reason?: string; [detail: string]: unknown };
}

/** The `data` of an error of code `C` (unknown for a code that documents none). */
export type ErrorData<C extends ErrorCode> = C extends keyof ErrorDataByCode ? ErrorDataByCode[C] : unknown;

/**
 * Codes that say "not now" rather than "no": a command refused with one of them may be sent again
 * later with the same id (the hub deduplicates it), and a call may be made again. The client retries
 * its own commands on these (after `retryAfterMs` for RATE_LIMITED).
 */
export const RETRYABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['UNAVAILABLE', 'RATE_LIMITED']);

/**
 * The HTTP status for each code, for a REST API in front of a hub (the reference server's). The body
 * should still carry the code itself; the status is what HTTP tooling looks at. See
 * {@link httpStatusOf} for the one refinement (a rejection of a missing entity is 404).
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

/** The HTTP status of an error: its code's, except a rejection of a missing entity (`task.notFound`), 404. */
export function httpStatusOf(error: LockstepError): number {
  if (error.code === 'COMMAND_REJECTED') {
    const reason = (error.data as { reason?: unknown } | undefined)?.reason;
    if (typeof reason === 'string' && reason.endsWith('.notFound')) return 404;
  }
  return HTTP_STATUS_BY_CODE[error.code];
}

/**
 * Whether `error` is a LockstepError (of `code`, when given), with its `data` typed for that code:
 * `if (isLockstepError(error, 'VERSION_CONFLICT')) error.data?.currentVersion`.
 */
export function isLockstepError<C extends ErrorCode = ErrorCode>(
  error: unknown,
  code?: C,
): error is LockstepError & { readonly code: C; readonly data: ErrorData<C> | undefined } {
  return error instanceof LockstepError && (code === undefined || error.code === code);
}

const codeByNumber = new Map<number, ErrorCode>(Object.entries(ErrorCodes).map(([name, value]) => [value, name as ErrorCode]));

/** The JSON-RPC `error` member as it crosses the wire. */
export interface WireError {
  code: number;
  message: string;
  data?: unknown;
}

/**
 * The one error type that crosses the wire. `code` is stable; `data` carries details such as the
 * current version of a version conflict, the zod issues of invalid params or the reason code of a
 * rejected command.
 */
export class LockstepError extends Error {
  override readonly name = 'LockstepError';
  readonly code: ErrorCode;
  readonly data: unknown;

  /** `options.cause`: what led to it, for logs in this process; it never crosses the wire. */
  constructor(code: ErrorCode, message: string, data?: unknown, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.data = data;
  }

  get rpcCode(): number {
    return ErrorCodes[this.code];
  }

  toJSON(): WireError {
    const wire: WireError = { code: this.rpcCode, message: this.message };
    if (this.data !== undefined) wire.data = this.data;
    return wire;
  }

  /** Rebuilds an error from a wire error; an unknown numeric code becomes INTERNAL_ERROR. */
  static fromWire(error: WireError): LockstepError {
    return new LockstepError(codeByNumber.get(error.code) ?? 'INTERNAL_ERROR', error.message, error.data);
  }

  /** Normalises anything thrown into a LockstepError, without leaking internals of unknown errors. */
  static from(error: unknown): LockstepError {
    if (error instanceof LockstepError) return error;
    if (error instanceof DomainRejection) {
      return new LockstepError('COMMAND_REJECTED', error.message, { ...error.details, reason: error.reason });
    }
    return new LockstepError('INTERNAL_ERROR', 'internal error');
  }
}

/**
 * Thrown by a domain's `decide` when a command would break an invariant. `reason` is a stable,
 * domain-specific code such as `task.notFound`; it reaches the client as
 * `COMMAND_REJECTED` with `data.reason`.
 */
export class DomainRejection extends Error {
  override readonly name = 'DomainRejection';
  readonly reason: string;
  readonly details: Record<string, unknown>;

  constructor(reason: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.reason = reason;
    this.details = details;
  }
}

/** Rejects a command from inside `decide`. */
export function reject(reason: string, message: string, details?: Record<string, unknown>): never {
  throw new DomainRejection(reason, message, details);
}

/** A failure of the connection itself (closed, timed out), as opposed to an answer from the hub. */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly kind: 'closed' | 'timeout';

  constructor(kind: 'closed' | 'timeout', message: string) {
    super(message);
    this.kind = kind;
  }
}

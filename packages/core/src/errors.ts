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

const codeByNumber = new Map<number, ErrorCode>(
  Object.entries(ErrorCodes).map(([name, value]) => [value, name as ErrorCode]),
);

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

  constructor(code: ErrorCode, message: string, data?: unknown) {
    super(message);
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

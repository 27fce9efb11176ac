/** WebSocket close codes this package uses or reports (RFC 6455 §7.4.1). */
export const CloseCodes = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  /** No close frame: the connection dropped (or the handshake failed). Never sent on the wire. */
  abnormal: 1006,
  invalidData: 1007,
  policyViolation: 1008,
  messageTooBig: 1009,
} as const;

const names: Readonly<Record<number, string>> = {
  1000: 'normal closure',
  1001: 'going away',
  1002: 'protocol error',
  1003: 'unsupported data',
  1005: 'no status',
  1006: 'abnormal closure',
  1007: 'invalid frame payload data',
  1008: 'policy violation',
  1009: 'message too big',
  1011: 'internal error',
};

/** A readable reason for a close: the peer's own when it gave one, else the code's meaning. */
export function closeReason(code: number, reason: string, lastError?: string): string {
  if (reason !== '') return reason;
  if (code === CloseCodes.abnormal && lastError !== undefined) return lastError;
  return `websocket closed (${code} ${names[code] ?? 'unknown code'})`;
}

/** A close frame's reason holds at most 123 bytes of UTF-8: cut at a character boundary. */
export function truncateReason(reason: string, maxBytes = 123): string {
  let bytes = 0;
  let end = 0;
  for (const char of reason) {
    const code = char.codePointAt(0)!;
    const size = code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return reason.slice(0, end);
}

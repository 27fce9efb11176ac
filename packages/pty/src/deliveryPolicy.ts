/**
 * How a viewer is sent a terminal's output:
 * - `'live'`: as soon as it is released (every ~16 ms coalesced chunk);
 * - `{ throttleMs }`: at most one burst per `throttleMs`, each carrying everything new since the last;
 * - `'pause'`: nothing until the mode changes (or the program exits); the viewer then catches up from
 *   its offset, or from the oldest retained byte with a `truncated` marker if it fell out of the
 *   scrollback meanwhile.
 */
export type DeliveryMode = 'live' | 'pause' | { readonly throttleMs: number };

/** `{ throttleMs: ms }`. */
export function throttle(ms: number): DeliveryMode {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`invalid throttle: ${ms} ms`);
  return { throttleMs: ms };
}

/**
 * Which mode a viewer gets, and the bounds that keep a slow viewer from costing memory or holding
 * anyone back. Sessions in the focus set of their project (`focus/<project>`) get `focused`, the
 * others `unfocused`; terminals without a project count as focused.
 */
export interface DeliveryPolicy {
  /** Default `'live'`. */
  focused?: DeliveryMode;
  /** Default `{ throttleMs: 250 }`. */
  unfocused?: DeliveryMode;
  /**
   * A viewer is sent nothing more while its connection holds more than this many unsent bytes; its
   * output coalesces meanwhile (it resumes from its offset with bigger chunks). Default 512 KiB,
   * well below the hub's `maxBufferedBytes` (4 MiB), so terminal output never makes the hub shed a
   * connection's subscriptions.
   */
  highWaterBytes?: number;
  /** How often a held-back viewer's connection is checked for having drained. Default 16 ms. */
  drainCheckMs?: number;
  /**
   * A viewer further behind than this skips ahead (with a `truncated` marker) to the last
   * `maxLagBytes` of output. Default: no bound but the scrollback itself — a viewer only skips what
   * the scrollback no longer holds.
   */
  maxLagBytes?: number;
}

export const DELIVERY_DEFAULTS = {
  focused: 'live',
  unfocused: { throttleMs: 250 },
  highWaterBytes: 512 * 1024,
  drainCheckMs: 16,
} as const satisfies DeliveryPolicy;

/** A policy with its defaults filled in, checked. */
export interface ResolvedDeliveryPolicy {
  focused: DeliveryMode;
  unfocused: DeliveryMode;
  highWaterBytes: number;
  drainCheckMs: number;
  maxLagBytes: number | undefined;
}

export function resolveDeliveryPolicy(policy: DeliveryPolicy = {}): ResolvedDeliveryPolicy {
  const resolved: ResolvedDeliveryPolicy = {
    focused: checkMode(policy.focused ?? DELIVERY_DEFAULTS.focused),
    unfocused: checkMode(policy.unfocused ?? DELIVERY_DEFAULTS.unfocused),
    highWaterBytes: policy.highWaterBytes ?? DELIVERY_DEFAULTS.highWaterBytes,
    drainCheckMs: policy.drainCheckMs ?? DELIVERY_DEFAULTS.drainCheckMs,
    maxLagBytes: policy.maxLagBytes,
  };
  if (!Number.isSafeInteger(resolved.highWaterBytes) || resolved.highWaterBytes < 0) throw new RangeError(`invalid highWaterBytes: ${resolved.highWaterBytes}`);
  if (!Number.isFinite(resolved.drainCheckMs) || resolved.drainCheckMs <= 0) throw new RangeError(`invalid drainCheckMs: ${resolved.drainCheckMs}`);
  if (resolved.maxLagBytes !== undefined && (!Number.isSafeInteger(resolved.maxLagBytes) || resolved.maxLagBytes < 1)) {
    throw new RangeError(`invalid maxLagBytes: ${resolved.maxLagBytes}`);
  }
  return resolved;
}

function checkMode(mode: DeliveryMode): DeliveryMode {
  if (mode === 'live' || mode === 'pause') return mode;
  if (typeof mode === 'object' && mode !== null && Number.isFinite(mode.throttleMs) && mode.throttleMs > 0) return mode;
  throw new RangeError(`invalid delivery mode: ${JSON.stringify(mode)}`);
}

export function describeMode(mode: DeliveryMode): string {
  return typeof mode === 'string' ? mode : `throttle(${mode.throttleMs})`;
}

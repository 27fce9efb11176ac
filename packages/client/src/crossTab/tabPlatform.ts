/**
 * The browser APIs the cross-tab connection uses, typed here: the client compiles without the DOM
 * lib. A browser's `BroadcastChannel` and `navigator.locks` fit these shapes.
 */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  onmessage: ((this: any, event: any) => any) | null;
  close(): void;
}
export type BroadcastChannelFactory = new (name: string) => BroadcastChannelLike;

export interface LockRequestOptions {
  ifAvailable?: boolean;
  /** Aborting it withdraws a request still waiting for the lock. */
  signal?: unknown;
}

export interface LockManagerLike {
  request(name: string, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
  request(name: string, options: LockRequestOptions, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** What tabs say to each other on the channel. `to` is a tab id, or `leader`. */
export type TabMessage =
  | { kind: 'open'; from: string; to: 'leader' }
  | { kind: 'opened'; from: string; to: string }
  | { kind: 'frame'; from: string; to: string; frame: string }
  | { kind: 'close'; from: string; to: string; reason: string }
  /** A tab took the lead: links to any other leader are stale. */
  | { kind: 'leader'; from: string }
  /** BroadcastChannel election (no Web Locks): the leader is alive. */
  | { kind: 'beat'; from: string }
  /** BroadcastChannel election: this tab asks to lead (the smallest tab id wins; a live leader answers with a beat). */
  | { kind: 'claim'; from: string }
  /** BroadcastChannel election: the leader leaves; the others claim at once. */
  | { kind: 'resign'; from: string };

const ADDRESSED = new Set(['opened', 'frame', 'close']);
const UNADDRESSED = new Set(['leader', 'beat', 'claim', 'resign']);

/**
 * A message of another tab of this origin, checked field by field: anything else on the channel (an
 * older release, another library) is ignored, never thrown.
 */
export function isTabMessage(data: unknown): data is TabMessage {
  if (typeof data !== 'object' || data === null) return false;
  const message = data as Record<string, unknown>;
  const { kind, from, to } = message;
  if (typeof kind !== 'string' || typeof from !== 'string') return false;
  if (UNADDRESSED.has(kind)) return true;
  if (kind === 'open') return to === 'leader';
  if (!ADDRESSED.has(kind) || typeof to !== 'string') return false;
  if (kind === 'frame') return typeof message['frame'] === 'string';
  if (kind === 'close') return typeof message['reason'] === 'string';
  return true;
}

export function platformChannel(): BroadcastChannelFactory | undefined {
  return (globalThis as unknown as { BroadcastChannel?: BroadcastChannelFactory }).BroadcastChannel;
}

export function platformLocks(): LockManagerLike | undefined {
  return (globalThis as unknown as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
}

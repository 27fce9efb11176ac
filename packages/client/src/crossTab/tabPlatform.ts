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

export interface LockManagerLike {
  request(name: string, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
  request(name: string, options: { ifAvailable: boolean }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

/** What tabs say to each other on the channel. `to` is a tab id, or `leader`. */
export type TabMessage =
  | { kind: 'open'; from: string; to: 'leader' }
  | { kind: 'opened'; from: string; to: string }
  | { kind: 'frame'; from: string; to: string; frame: string }
  | { kind: 'close'; from: string; to: string; reason: string }
  /** A tab took the lead: links to any other leader are stale. */
  | { kind: 'leader'; from: string };

export function isTabMessage(data: unknown): data is TabMessage {
  return typeof data === 'object' && data !== null && typeof (data as { kind?: unknown }).kind === 'string' && typeof (data as { from?: unknown }).from === 'string';
}

export function platformChannel(): BroadcastChannelFactory | undefined {
  return (globalThis as unknown as { BroadcastChannel?: BroadcastChannelFactory }).BroadcastChannel;
}

export function platformLocks(): LockManagerLike | undefined {
  return (globalThis as unknown as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
}

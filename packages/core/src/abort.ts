/**
 * The part of the platform's `AbortSignal` that Lockstep uses. `@lockstep/core` and
 * `@lockstep/client` compile without DOM or Node typings, so they name this shape instead; every
 * `AbortSignal` (browsers, Node, workers) fits it, and the signals Lockstep hands out are real ones.
 */
export interface AbortSignalLike {
  readonly aborted: boolean;
  readonly reason?: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** The part of `AbortController` that Lockstep uses. */
export interface AbortControllerLike {
  readonly signal: AbortSignalLike;
  abort(reason?: unknown): void;
}

/** A new platform `AbortController` (every supported runtime has one). */
export function createAbortController(): AbortControllerLike {
  const Controller = (globalThis as unknown as { AbortController: new () => AbortControllerLike }).AbortController;
  return new Controller();
}

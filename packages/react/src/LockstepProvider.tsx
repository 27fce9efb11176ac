import type { LockstepClient } from '@lockstep/client';
import type { Clock } from '@lockstep/core';
import { createContext, useContext, useMemo, type ReactNode } from 'react';
import { DEFAULT_RELEASE_AFTER_MS, StreamRegistry } from './streamRegistry.js';

export interface LockstepProviderProps {
  /** The client the hooks below read from and dispatch to. The provider never closes it. */
  client: LockstepClient;
  /**
   * A stream the hooks opened is closed (unsubscribed from the hub) this long after the last
   * component using it unmounts. `Infinity` keeps every stream open for the client's lifetime.
   * Streams you opened yourself with `client.stream()` are never closed by the hooks. Default 1 s.
   */
  releaseUnusedStreamsAfterMs?: number;
  /** Timers for the release delay. Default: the platform's. */
  clock?: Clock;
  children?: ReactNode;
}

const LockstepContext = createContext<StreamRegistry | null>(null);
LockstepContext.displayName = 'LockstepContext';

/** Makes a `LockstepClient` available to `useStream`, `useCommand` and the other hooks below it. */
export function LockstepProvider({ client, releaseUnusedStreamsAfterMs = DEFAULT_RELEASE_AFTER_MS, clock, children }: LockstepProviderProps): ReactNode {
  const registry = useMemo(() => new StreamRegistry(client, releaseUnusedStreamsAfterMs, clock), [client, releaseUnusedStreamsAfterMs, clock]);
  // `.Provider` rather than React 19's `<Context value>`: the peer range includes React 18.3.
  return <LockstepContext.Provider value={registry}>{children}</LockstepContext.Provider>;
}

/** @internal The registry of the nearest provider. */
export function useRegistry(): StreamRegistry {
  const registry = useContext(LockstepContext);
  if (!registry) throw new Error('Lockstep hooks need a <LockstepProvider client={…}> above them');
  return registry;
}

/** The `LockstepClient` of the nearest `LockstepProvider` (for extension requests, `whenIdle()`, …). */
export function useLockstepClient(): LockstepClient {
  return useRegistry().client;
}

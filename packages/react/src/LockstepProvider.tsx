import type { LockstepClient } from '@lockstep/client';
import type { Clock } from '@lockstep/core';
import { createContext, useContext, useEffect, useMemo, useState, type ReactNode } from 'react';
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
  /**
   * Rendered instead of the children while a persistent client reads its storage (`status.storage`
   * is `restoring`, docs/offline.md), so the children's first render already shows the restored
   * state. Takes a few milliseconds; a client without `persistence` never waits. Default: nothing.
   */
  fallback?: ReactNode;
  children?: ReactNode;
}

const LockstepContext = createContext<StreamRegistry | null>(null);
LockstepContext.displayName = 'LockstepContext';

/** Makes a `LockstepClient` available to `useStream`, `useCommand` and the other hooks below it. */
export function LockstepProvider({
  client,
  releaseUnusedStreamsAfterMs = DEFAULT_RELEASE_AFTER_MS,
  clock,
  fallback = null,
  children,
}: LockstepProviderProps): ReactNode {
  const registry = useMemo(() => new StreamRegistry(client, releaseUnusedStreamsAfterMs, clock), [client, releaseUnusedStreamsAfterMs, clock]);
  const restoring = useRestoring(client);
  // `.Provider` rather than React 19's `<Context value>`: the peer range includes React 18.3.
  return <LockstepContext.Provider value={registry}>{restoring ? fallback : children}</LockstepContext.Provider>;
}

/** True while `client` reads its storage (only a persistent client ever does). */
function useRestoring(client: LockstepClient): boolean {
  const [restoredClient, setRestoredClient] = useState<LockstepClient | undefined>(undefined);
  const restoring = restoredClient !== client && client.status.storage === 'restoring';
  useEffect(() => {
    if (!restoring) return;
    let live = true;
    void client.restored.then(() => live && setRestoredClient(client));
    return () => {
      live = false;
    };
  }, [client, restoring]);
  return restoring;
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

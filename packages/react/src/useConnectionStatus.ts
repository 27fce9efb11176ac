import type { ClientStatus, SyncedStream } from '@lockstep/client';
import type { AnyDomain } from '@lockstep/core';
import { useMemo, useSyncExternalStore } from 'react';
import { useRegistry } from './LockstepProvider.js';

/** The client's connection as a UI shows it. */
export interface ConnectionStatus extends ClientStatus {
  /** Commands of every open stream not yet confirmed by the hub. */
  pending: number;
}

/**
 * The connection status of the provider's client (`connecting`, `online`, `resyncing`, `offline`,
 * `closed`), the failed attempts since the last success, the last connection error, and the number
 * of pending commands over all open streams. Re-renders only when one of them changes.
 */
export function useConnectionStatus(): ConnectionStatus {
  const registry = useRegistry();
  const { client } = registry;
  const store = useMemo(() => {
    let last: ConnectionStatus | undefined;
    const getSnapshot = (): ConnectionStatus => {
      const status = client.status;
      let pending = 0;
      for (const stream of client.streams.values()) pending += stream.pendingCommands.length;
      if (
        last &&
        last.status === status.status &&
        last.attempt === status.attempt &&
        last.lastError === status.lastError &&
        last.serverId === status.serverId &&
        last.storage === status.storage &&
        last.pending === pending
      ) {
        return last;
      }
      last = { ...status, pending };
      return last;
    };
    const subscribe = (onChange: () => void) => {
      // Pending counts change on the streams, not on the client's status: watch every open stream,
      // including those opened later (found on the next change, or announced by the hooks).
      const watched = new Map<SyncedStream<AnyDomain>, () => void>();
      const scan = () => {
        for (const stream of client.streams.values()) if (!watched.has(stream)) watched.set(stream, stream.subscribe(changed));
        for (const [stream, unsubscribe] of watched) {
          if (stream.closed) {
            unsubscribe();
            watched.delete(stream);
          }
        }
      };
      const changed = () => {
        scan();
        onChange();
      };
      scan();
      let subscribed = false;
      const statusSubscription = client.status$.subscribe(() => {
        if (subscribed) changed(); // a BehaviorSubject repeats its current value on subscribe
      });
      subscribed = true;
      const stopWatchingOpens = registry.onOpen(changed);
      return () => {
        statusSubscription.unsubscribe();
        stopWatchingOpens();
        for (const unsubscribe of watched.values()) unsubscribe();
        watched.clear();
      };
    };
    return { getSnapshot, subscribe };
  }, [registry, client]);
  return useSyncExternalStore(store.subscribe, store.getSnapshot, store.getSnapshot);
}

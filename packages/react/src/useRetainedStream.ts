import type { SyncedStream } from '@lockstep/client';
import type { AnyDomain } from '@lockstep/core';
import { useCallback, useReducer } from 'react';
import { useRegistry } from './LockstepProvider.js';

/**
 * The open stream and a `subscribe` for `useSyncExternalStore` that keeps it retained while the
 * component is mounted. A stream closed under the component (by the application) is replaced by a
 * fresh one on the next render.
 */
export function useRetainedStream<D extends AnyDomain>(domain: D, key: string): { stream: SyncedStream<D>; subscribe: (onChange: () => void) => () => void } {
  const registry = useRegistry();
  const [, rerender] = useReducer((n: number) => n + 1, 0);
  const stream = registry.open(domain, key);
  const subscribe = useCallback(
    (onChange: () => void) => {
      if (stream.closed) {
        rerender();
        return () => {};
      }
      const release = registry.retain(stream);
      const unsubscribe = stream.subscribe(() => {
        if (stream.closed) rerender();
        onChange();
      });
      return () => {
        unsubscribe();
        release();
      };
    },
    [registry, stream],
  );
  return { stream, subscribe };
}

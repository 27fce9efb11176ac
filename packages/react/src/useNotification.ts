import type { AnyServiceNotification, ParamsOutput } from '@lockstep/core';
import { useEffect, useRef } from 'react';
import { useLockstepClient } from './LockstepProvider.js';

/**
 * Listens to a notification of a service from the hub (`client.on`) while the component is mounted:
 * `useNotification(daemon.output, (chunk) => append(chunk))`. The params are validated with the
 * notification's schema first and typed from it. The latest `listener` is called — an inline arrow is
 * fine: changing it does not listen again. `enabled: false` stops listening.
 */
export function useNotification<N extends AnyServiceNotification>(notification: N, listener: (params: ParamsOutput<N>) => void, enabled = true): void {
  const client = useLockstepClient();
  const latest = useRef(listener);
  useEffect(() => {
    latest.current = listener;
  });
  useEffect(() => {
    if (!enabled) return;
    return client.on(notification, (params) => latest.current(params));
  }, [client, notification, enabled]);
}

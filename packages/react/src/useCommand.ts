import type { DispatchOptions } from '@lockstep/client';
import type { AnyDomain, CommandOf, protocol } from '@lockstep/core';
import { useCallback, useEffect } from 'react';
import { useRegistry } from './LockstepProvider.js';

/** Sends a command to a stream; see {@link useCommand}. */
export type Dispatch<D extends AnyDomain> = (command: CommandOf<D>, options?: DispatchOptions) => Promise<protocol.CommandResult>;

/**
 * A stable `dispatch` for the stream `<domain>/<key>`: the command's effect shows at once in every
 * `useStream` of that stream (optimistic), and the returned promise resolves with the hub's ack once
 * the effect is confirmed — or rejects with the hub's refusal (a `LockstepError` with its `code`
 * and `data.reason`), after which the view no longer shows it.
 */
export function useCommand<D extends AnyDomain>(domain: D, key: string): Dispatch<D> {
  const registry = useRegistry();
  const stream = registry.open(domain, key);
  useEffect(() => registry.retain(stream), [registry, stream]);
  return useCallback(
    (command: CommandOf<D>, options?: DispatchOptions) =>
      // Closed under us by the application: send through the stream open now instead.
      (stream.closed ? registry.open(domain, key) : stream).dispatch(command, options),
    [registry, stream, domain, key],
  );
}

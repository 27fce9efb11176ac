import type { StreamStatus } from '@lockstep/client';
import type { AnyDomain, StateOf } from '@lockstep/core';
import { useEffect, useMemo, useRef, useSyncExternalStore } from 'react';
import { useRetainedStream } from './useRetainedStream.js';

/**
 * The optimistic state of the stream `<domain>/<key>` (opened and subscribed on first use): what
 * the hub confirmed plus this client's pending commands. The component re-renders when it changes.
 */
export function useStream<D extends AnyDomain>(domain: D, key: string): StateOf<D>;
/**
 * A slice of the stream's optimistic state. The component re-renders only when the selected value
 * changes by `isEqual` (default `Object.is`; `shallowEqual` for selectors that build new arrays or
 * objects). The selector runs again only when the state object changes or the selector does.
 */
export function useStream<D extends AnyDomain, T>(domain: D, key: string, selector: (state: StateOf<D>) => T, isEqual?: (a: T, b: T) => boolean): T;
export function useStream<D extends AnyDomain, T>(
  domain: D,
  key: string,
  selector?: (state: StateOf<D>) => T,
  isEqual: (a: T, b: T) => boolean = Object.is,
): StateOf<D> | T {
  const { stream, subscribe } = useRetainedStream(domain, key);
  // The selection last rendered: a new selector (an inline arrow, each render) whose result equals
  // it keeps its identity, so children memoized on it do not re-render.
  const rendered = useRef<{ value: T } | undefined>(undefined);
  const getSnapshot = useMemo((): (() => StateOf<D> | T) => {
    if (!selector) return stream.getSnapshot;
    let memo: { view: StateOf<D>; value: T } | undefined;
    return (): T => {
      const view = stream.getSnapshot();
      if (memo && memo.view === view) return memo.value;
      const next = selector(view);
      const previous = memo ?? rendered.current;
      const value = previous !== undefined && isEqual(previous.value, next) ? previous.value : next;
      memo = { view, value };
      return value;
    };
  }, [stream, selector, isEqual]);
  const value = useSyncExternalStore(subscribe, getSnapshot, getSnapshot);
  useEffect(() => {
    rendered.current = selector ? { value: value } : undefined;
  });
  return value;
}

/**
 * The sync status of the stream `<domain>/<key>`: `{status, pending, confirmedVersion,
 * serverVersion, lag, lastError}`. `lastError` is the last refusal from the hub.
 */
export function useStreamStatus<D extends AnyDomain>(domain: D, key: string): StreamStatus {
  const { stream, subscribe } = useRetainedStream(domain, key);
  return useSyncExternalStore(subscribe, stream.getStatus, stream.getStatus);
}

import type { AnyDomain } from '@lockstep/core';
import { useStreamStatus } from '@lockstep/react';
import { useRef } from 'react';

/**
 * Whether the stream's state has come from the hub at least once: until then an empty state means
 * "not loaded yet", not "nothing there", and the panels say so instead of showing an empty board.
 */
export function useLoaded(domain: AnyDomain, key: string): boolean {
  const { status, confirmedVersion } = useStreamStatus(domain, key);
  const loaded = useRef(false);
  if (status === 'online' || confirmedVersion > 0) loaded.current = true;
  return loaded.current;
}

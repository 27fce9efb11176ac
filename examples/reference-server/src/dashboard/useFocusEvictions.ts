import { focusDomain } from '@lockstep/core';
import { useLockstepClient, useStream } from '@lockstep/react';
import { useEffect, useRef, useState } from 'react';

export interface Eviction {
  /** The session that lost focus to make room. */
  sessionId: string;
  /** The session whose focus needed the room. */
  bySessionId: string;
  at: number;
}

const SHOW_MS = 10_000;
const nothing = () => undefined;

/**
 * Evictions from the focus set of `focus/<project>` as the hub records them, whichever client caused
 * them: `focus.lost` events with reason `evicted` (never a blur, a grid replaced with `focus.setMany`
 * or a smaller grid size). Only live ones: the events a (re)subscription catches up with are history.
 * Each one is shown for a while.
 */
export function useFocusEvictions(project: string): readonly Eviction[] {
  const client = useLockstepClient();
  // Keeps the stream open and subscribed while the component is mounted (nothing re-renders for it).
  useStream(focusDomain, project, nothing);
  const [evictions, setEvictions] = useState<readonly Eviction[]>([]);
  const timers = useRef(new Set<ReturnType<typeof setTimeout>>());
  useEffect(() => {
    const pending = timers.current;
    return () => {
      for (const timer of pending) clearTimeout(timer);
      pending.clear();
    };
  }, []);

  useEffect(() => {
    const stream = client.stream(focusDomain, project);
    const subscription = stream.changes$.subscribe((change) => {
      // Catching up (first subscription, reconnect): those evictions happened a while ago.
      if (change.kind !== 'events' || !stream.synced) return;
      const fresh: Eviction[] = [];
      for (const event of change.events) {
        if (event.type !== 'focus.lost') continue;
        const lost = event.data as { sessionId: string; reason: string; bySessionId?: string };
        if (lost.reason === 'evicted' && lost.bySessionId !== undefined)
          fresh.push({ sessionId: lost.sessionId, bySessionId: lost.bySessionId, at: event.time });
      }
      if (fresh.length === 0) return;
      const left = new Set(fresh.map((eviction) => eviction.sessionId));
      setEvictions((list) => [...list.filter((eviction) => !left.has(eviction.sessionId)), ...fresh].slice(-4));
      const timer = setTimeout(() => {
        timers.current.delete(timer);
        setEvictions((list) => list.filter((eviction) => !fresh.includes(eviction)));
      }, SHOW_MS);
      timers.current.add(timer);
    });
    return () => subscription.unsubscribe();
  }, [client, project]);

  return evictions;
}

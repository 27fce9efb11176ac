import { focusDomain } from '@lockstep/core';
import { useStream } from '@lockstep/react';
import { useEffect, useRef, useState } from 'react';
import { PROJECT_ID } from '../contract.js';

export interface Eviction {
  /** The session that lost focus to make room. */
  sessionId: string;
  /** The session whose focus needed the room. */
  bySessionId: string;
  at: number;
}

const SHOW_MS = 10_000;

/**
 * Evictions from the focus set as they happen, from whichever client caused them: a change in which
 * sessions left the set while others joined it, with the set full before, is the hub evicting the
 * least active session (`focus.lost` with reason `evicted`; blur and close only remove). Each one is
 * shown for a while.
 */
export function useFocusEvictions(): readonly Eviction[] {
  const focus = useStream(focusDomain, PROJECT_ID);
  const previous = useRef(focus);
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
    const before = previous.current;
    previous.current = focus;
    if (before === focus) return;
    const left = before.focused.filter((id) => !focus.focused.includes(id));
    const joined = focus.focused.filter((id) => !before.focused.includes(id));
    if (left.length === 0 || joined.length === 0 || before.focused.length < before.maxFocused) return;
    const at = Date.now();
    const fresh = left.map((sessionId) => ({ sessionId, bySessionId: joined[joined.length - 1]!, at }));
    setEvictions((list) => [...list.filter((eviction) => !left.includes(eviction.sessionId)), ...fresh].slice(-4));
    const timer = setTimeout(() => {
      timers.current.delete(timer);
      setEvictions((list) => list.filter((eviction) => !fresh.includes(eviction)));
    }, SHOW_MS);
    timers.current.add(timer);
  }, [focus]);

  return evictions;
}

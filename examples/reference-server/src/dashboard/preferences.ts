import { useCallback, useMemo, useSyncExternalStore } from 'react';

/**
 * What the dashboard remembers in this browser (localStorage, per server origin): the layout, the
 * recent projects, the session profile last picked. Every component reading a preference re-renders
 * when any of them sets it, in this tab and in the others. A browser that refuses storage (private
 * mode, quota) keeps the values for the page's lifetime.
 */
const PREFIX = 'lockstep.dashboard.';
const memory = new Map<string, string>();
const listeners = new Set<() => void>();

function read(key: string): string | null {
  try {
    return localStorage.getItem(PREFIX + key) ?? memory.get(key) ?? null;
  } catch {
    return memory.get(key) ?? null;
  }
}

function write(key: string, value: string): void {
  memory.set(key, value);
  try {
    localStorage.setItem(PREFIX + key, value);
  } catch {
    // Kept in memory only.
  }
  for (const listener of listeners) listener();
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  // Another tab of the same server changed it.
  window.addEventListener('storage', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('storage', listener);
  };
}

/**
 * A remembered value: `parse` turns what is stored into a value (undefined when it is not one any
 * more, e.g. a layout this version no longer has), else `fallback`. Pass a `parse` and `fallback`
 * that keep their identity (module constants): the value is parsed again only when they or the
 * stored text change.
 */
export function usePreference<T>(
  key: string,
  parse: (stored: string) => T | undefined,
  fallback: T,
  serialize: (value: T) => string = String,
): [T, (value: T) => void] {
  const stored = useSyncExternalStore(subscribe, () => read(key));
  const value = useMemo(() => (stored === null ? fallback : (parse(stored) ?? fallback)), [stored, parse, fallback]);
  const set = useCallback((next: T) => write(key, serialize(next)), [key, serialize]);
  return [value, set];
}

/** Reads a remembered value outside React (at start). */
export function readPreference(key: string): string | null {
  return read(key);
}

export function writePreference(key: string, value: string): void {
  write(key, value);
}

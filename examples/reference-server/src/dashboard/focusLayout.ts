import { MAX_FOCUSED_LIMIT, type Session } from '@lockstep/core';

/**
 * The focus grid's choices, as plain functions (the grid component renders them): which grid sizes
 * the size control offers, how many columns a grid of tiles gets, and the "focus these" selection.
 */

/** The grid sizes offered (`focus.configure {maxFocused}`); the current limit is offered too when it is another. */
export const GRID_SIZES: readonly number[] = [1, 2, 4, 6, 9];

/** The sizes to offer when the limit is `current`: the usual ones, plus `current` in its place. */
export function gridSizes(current: number): number[] {
  const sizes = new Set([...GRID_SIZES, current].filter((size) => size >= 1 && size <= MAX_FOCUSED_LIMIT));
  return [...sizes].sort((a, b) => a - b);
}

/** Columns for `tiles` tiles: one for one, two up to four, three up to nine, then the square root. */
export function gridColumns(tiles: number): number {
  if (tiles <= 1) return 1;
  if (tiles <= 4) return 2;
  if (tiles <= 9) return 3;
  return Math.ceil(Math.sqrt(tiles));
}

/** What a "focus these" selection starts from: the focused sessions that still exist, in grid order. */
export function initialChoice(focused: readonly string[], sessions: Readonly<Record<string, Session>>): string[] {
  return focused.filter((id) => Object.hasOwn(sessions, id));
}

/**
 * The selection after clicking `sessionId`: taken out if chosen, else added at the end — unless
 * `max` are already chosen (then unchanged: the grid holds no more).
 */
export function toggleChoice(chosen: readonly string[], sessionId: string, max: number): readonly string[] {
  if (chosen.includes(sessionId)) return chosen.filter((id) => id !== sessionId);
  return chosen.length >= max ? chosen : [...chosen, sessionId];
}

/** The sessions a chooser lists: oldest first (a stable order), the chosen ones' grid places beside them. */
export function chooserRows(sessions: Readonly<Record<string, Session>>, chosen: readonly string[]): Array<{ session: Session; place: number | undefined }> {
  return Object.values(sessions)
    .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((session) => {
      const index = chosen.indexOf(session.id);
      return { session, place: index >= 0 ? index + 1 : undefined };
    });
}

import type { Session } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { chooserRows, gridColumns, gridSizes, initialChoice, toggleChoice } from './focusLayout.js';

const session = (id: string, createdAt: number): Session => ({
  id,
  name: id,
  kind: 'terminal',
  status: 'running',
  taskIds: [],
  createdAt,
  updatedAt: createdAt,
});
const sessions = { b: session('b', 2), a: session('a', 1), c: session('c', 2) };

describe('focus grid layout', () => {
  it('offers the usual grid sizes, and the current limit where it is another', () => {
    expect(gridSizes(4)).toEqual([1, 2, 4, 6, 9]);
    expect(gridSizes(3)).toEqual([1, 2, 3, 4, 6, 9]);
    expect(gridSizes(64)).toEqual([1, 2, 4, 6, 9, 64]);
  });

  it('lays tiles out in 1, 2, 3 columns, then the square root', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 9, 10, 16, 17].map(gridColumns)).toEqual([1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5]);
  });

  it('starts a selection from the focused sessions that still exist, in grid order', () => {
    expect(initialChoice(['c', 'gone', 'a'], sessions)).toEqual(['c', 'a']);
  });

  it('adds a session at the end, removes a chosen one, and adds none past the limit', () => {
    expect(toggleChoice(['a'], 'c', 2)).toEqual(['a', 'c']);
    expect(toggleChoice(['a', 'c'], 'a', 2)).toEqual(['c']);
    const full = ['a', 'c'];
    expect(toggleChoice(full, 'b', 2)).toBe(full);
  });

  it('lists sessions oldest first, with the grid place of the chosen ones', () => {
    expect(chooserRows(sessions, ['c', 'a']).map(({ session: { id }, place }) => [id, place])).toEqual([
      ['a', 2],
      ['b', undefined],
      ['c', 1],
    ]);
  });
});

import { it } from 'vitest';

const undeclared = Object.assign(() => {}, { each: () => () => {} }) as unknown as typeof it;

/**
 * `it` when a case applies to the implementation under test, otherwise a stand-in that declares
 * nothing: a case that cannot apply (durability of a memory store, binary frames on a text-only
 * transport) is left out rather than reported as skipped, since a skip in CI reads as a hidden failure.
 */
export function caseIf(applies: boolean): typeof it {
  return applies ? it : undeclared;
}

import { randomId } from '@lockstep/core';

/** A new task or session id, made in the browser so a command and the ones after it can name it. */
export function newId(prefix: 'task' | 'sess'): string {
  return `${prefix}_${randomId(10)}`;
}

import { reject, type TasksState } from '@lockstep/core';
import type { CommandCheck, Hub } from '@lockstep/server';

/** The rejection reason for focusing a session that `tasks/<project>` does not hold. */
export const UNKNOWN_SESSION = 'focus.unknownSession';

type Check = (command: CommandCheck) => void | Promise<void>;

/**
 * The reference server's cross-stream rule, as the hub's `checkCommand`: `focus.set` and
 * `focus.setMany` on `focus/<project>` may only name sessions of `tasks/<project>` (in any status).
 * Otherwise the command is rejected with {@link UNKNOWN_SESSION}, details `{stream, sessionIds}` (the
 * missing ones), and changes nothing — for REST, the CLI and WebSocket clients alike, since every
 * command goes through the hub's pipeline. Blur, touch, close and configure only ever remove or
 * refresh, so they are not checked (a deleted session's terminal can still release its focus).
 * `then`, when given, is checked next (an application's own `checkCommand`).
 *
 * A check, not a transaction: a session deleted right after is released by its terminal's exit
 * (`focus.close`).
 */
export function focusedSessionsMustExist(hub: () => Hub, then?: Check): Check {
  return (command) => {
    const named = command.domain === 'focus' ? sessionsNamed(command) : [];
    if (named.length === 0) return then?.(command);
    return (async () => {
      const stream = `tasks/${command.key}`;
      const { state } = await hub().read(stream);
      const { sessions } = state as TasksState;
      const missing = named.filter((id) => !Object.hasOwn(sessions, id));
      if (missing.length > 0) {
        reject(UNKNOWN_SESSION, `no session ${missing.join(', ')} in ${stream}: only existing sessions can be focused`, { stream, sessionIds: missing });
      }
      await then?.(command);
    })();
  };
}

/** The sessions a focus command would add to the set. */
function sessionsNamed(command: CommandCheck): readonly string[] {
  if (command.type === 'focus.set') return [(command.payload as { sessionId: string }).sessionId];
  if (command.type === 'focus.setMany') return (command.payload as { sessionIds: string[] }).sessionIds;
  return [];
}

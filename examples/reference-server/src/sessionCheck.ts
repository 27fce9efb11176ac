import { reject } from '@lockstep/core';
import type { CommandCheck } from '@lockstep/server';
import type { Profiles } from './profiles.js';

/** The rejection reason for a client setting what only a session's program decides. */
export const STATUS_OWNED_BY_PROCESS = 'session.statusOwnedByProcess';

/** The fields of `session.update` that say how the program runs or ended. */
const PROCESS_FIELDS = ['status', 'exitCode', 'signal', 'reason'] as const;

type Check = (command: CommandCheck) => void | Promise<void>;

export interface SessionCheckOptions {
  /** The project whose sessions this server runs: only `tasks/<project>` is checked. */
  project: string;
  profiles: Profiles;
  /** Whether a command id is one of the server's own status records (`SessionTerminals.issued`). */
  issued(commandId: string): boolean;
  /** Checked next (an application's own `checkCommand`). */
  then?: Check | undefined;
}

/**
 * The reference server's rules for the sessions it runs, as the hub's `checkCommand` — so they hold
 * for REST, the CLI and WebSocket clients alike:
 *
 * - `session.create` names a profile this server has (or none: the default) and a prompt that
 *   profile takes — else `INVALID_PARAMS` with `details.reason` `profile.unknown`,
 *   `profile.takesNoPrompt`, `prompt.controlCharacter` or `prompt.lineTooLong`; and it starts
 *   `starting` (a `status` other than that is {@link STATUS_OWNED_BY_PROCESS}).
 * - `session.update` may change a session's `name` only: `status`, `exitCode`, `signal` and `reason`
 *   are recorded by the server's terminal bookkeeping alone (its commands carry ids it issued,
 *   unguessable and used once), so a client cannot mark a live program `exited` — nor a dead one
 *   `running`. Stopping is `POST /api/sessions/:id/stop`; deleting ends the program too.
 *
 * Other projects' sessions have no program on this server, and are not checked.
 */
export function sessionsRunByServer(options: SessionCheckOptions): Check {
  const stream = `tasks/${options.project}`;
  return (command) => {
    if (command.stream === stream) {
      if (command.type === 'session.create') {
        const { profile, prompt, status } = command.payload as { profile?: string; prompt?: string; status?: string };
        options.profiles.check(profile, prompt);
        if (status !== undefined && status !== 'starting') {
          reject(STATUS_OWNED_BY_PROCESS, `a session of ${stream} starts as starting: its terminal records whether it runs (not ${status})`, {
            field: 'status',
          });
        }
      } else if (command.type === 'session.update' && !options.issued(command.id)) {
        const payload = command.payload as Record<string, unknown> & { id: string };
        const fields = PROCESS_FIELDS.filter((field) => payload[field] !== undefined);
        if (fields.length > 0) {
          reject(
            STATUS_OWNED_BY_PROCESS,
            `the ${fields.join(', ')} of session ${payload.id} ${fields.length > 1 ? 'are' : 'is'} its program's to record: POST /api/sessions/${payload.id}/stop ends it, DELETE removes it`,
            { id: payload.id, fields },
          );
        }
      }
    }
    return options.then?.(command);
  };
}

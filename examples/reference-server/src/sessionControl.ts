import { LockstepError, type TasksState } from '@lockstep/core';
import type { Hub, Identity } from '@lockstep/server';
import type { StopSignal } from './contract.js';
import type { DaemonStatus } from './daemonStatus.js';

/**
 * What the REST routes (`POST /api/sessions/:id/stop`) and the daemon service (`daemon.stopSession`)
 * share about acting on a session's program, so the two entries refuse and stop exactly alike.
 */

/** The refusal for a session the project does not hold: `COMMAND_REJECTED`, `reason: "session.notFound"` (REST: 404), as the tasks domain answers. */
export function sessionNotFound(id: string): LockstepError {
  return new LockstepError('COMMAND_REJECTED', `no session ${id}`, { reason: 'session.notFound', id });
}

/** The refusal for a session whose program this server does not run (another project, or `--no-terminals`). */
export function noProgram(stream: string): LockstepError {
  return new LockstepError('COMMAND_REJECTED', `this server runs no programs for the sessions of ${stream}`, { reason: 'session.noProgram', stream });
}

/**
 * Stops the program of session `sessionId` of `tasks/<projectId>` as `identity`: the `write` grant on
 * the stream first (stopping records the exit), then the session must exist and be one this server
 * runs. Resolves once the exit is recorded: true when this stopped it, false when it had already
 * ended (nothing changes). See `SessionTerminals.stop` for the signals.
 */
export async function stopSession(
  hub: Hub,
  daemon: DaemonStatus | undefined,
  identity: Identity | undefined,
  projectId: string,
  sessionId: string,
  signal?: StopSignal,
): Promise<boolean> {
  const stream = `tasks/${projectId}`;
  await hub.authorize(identity, stream, 'write');
  const { state } = await hub.read(stream, { identity });
  if (!Object.hasOwn((state as TasksState).sessions, sessionId)) throw sessionNotFound(sessionId);
  const sessions = daemon?.project === projectId ? daemon.sessions : undefined;
  if (!sessions) throw noProgram(stream);
  return (await sessions.stop(sessionId, signal)) === 'stopped';
}

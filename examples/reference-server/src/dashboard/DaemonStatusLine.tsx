import { tasksDomain, type TasksState } from '@lockstep/core';
import { useCall, useStream } from '@lockstep/react';
import { useEffect, useRef } from 'react';
import { daemonService } from '../daemonService.js';
import { TERMINALS_PROJECT } from './project.js';

/** What moves the daemon's counts: a session of the terminals project coming, going or changing status. */
const sessionStatuses = (state: TasksState) =>
  Object.values(state.sessions)
    .map((session) => `${session.id}:${session.status}`)
    .sort()
    .join();

/**
 * Seed 003's daemon status in the top bar: programs running and waiting for a terminal slot, over the
 * typed `daemon.daemonStatus` method (`useCall`), asked again whenever a session of the terminals
 * project comes, goes or changes status (and after a reconnect). Nothing on a server that does not
 * serve the daemon service.
 */
export function DaemonStatusLine() {
  const daemon = useCall(daemonService.daemonStatus, undefined);
  const { refresh } = daemon;
  const sessions = useStream(tasksDomain, TERMINALS_PROJECT, sessionStatuses);
  const seen = useRef(sessions);
  useEffect(() => {
    if (seen.current === sessions) return; // the first answer is asked for on mount already
    seen.current = sessions;
    refresh();
  }, [sessions, refresh]);

  const status = daemon.result;
  if (!status) {
    if (daemon.error?.code === 'METHOD_NOT_FOUND') return null;
    return (
      <div className="daemon-status" data-testid="daemon-status" data-loaded="false" title={daemon.error?.message}>
        <span className="muted">Daemon…</span>
      </div>
    );
  }
  const title = [
    `Up ${formatDuration(status.uptimeMs)} (when asked)`,
    `${status.totals.started} started, ${status.totals.exited} ended, ${status.totals.failed} failed since`,
    `Profiles: ${status.profiles.map((profile) => profile.name).join(', ') || 'none'}`,
  ].join('\n');
  return (
    <div
      className={`daemon-status${daemon.pending ? ' refreshing' : ''}`}
      data-testid="daemon-status"
      data-loaded="true"
      data-active={status.activeSessions}
      data-queued={status.queuedSessions}
      title={title}
    >
      {status.terminals ? (
        <>
          <span data-testid="daemon-active">{status.activeSessions} running</span>
          {status.queuedSessions > 0 && <span data-testid="daemon-queued">{status.queuedSessions} waiting</span>}
          <span className="muted">{status.maxTerminals} slots</span>
        </>
      ) : (
        <span className="muted">no terminals on this server</span>
      )}
    </div>
  );
}

function formatDuration(ms: number): string {
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 1) return 'less than a minute';
  if (minutes < 120) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

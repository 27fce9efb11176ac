import { LockstepError, focusDomain, isFocused, tasksDomain, type Session, type TasksState } from '@lockstep/core';
import { useCall, useCommand, useLockstepClient, useStream } from '@lockstep/react';
import { useState, type FormEvent } from 'react';
import { daemonService } from '../daemonService.js';
import { newId } from './ids.js';
import { TERMINALS_PROJECT, useProject } from './project.js';
import { profileFields, useProfiles, useSelectedProfile } from './profiles.js';
import { useReport } from './toasts.js';
import { useLoaded } from './useLoaded.js';

const bySessions = (state: TasksState) => state.sessions;
const byTasks = (state: TasksState) => state.tasks;
const sessionOrder = (a: Session, b: Session) => a.createdAt - b.createdAt || a.id.localeCompare(b.id);

/**
 * The project's sessions: click one to focus it (at most four are; the least active one makes
 * room), link it to tasks, or delete it. In the terminals project each has a terminal on the server
 * (closed with it), running the profile picked when it was created, if the server has profiles; in
 * the others a session is a record whose status its own client reports.
 */
export function Sessions() {
  const project = useProject();
  const sessions = useStream(tasksDomain, project, bySessions);
  const tasks = useStream(tasksDomain, project, byTasks);
  const focus = useStream(focusDomain, project);
  const dispatchTasks = useCommand(tasksDomain, project);
  const dispatchFocus = useCommand(focusDomain, project);
  const report = useReport();
  const loaded = useLoaded(tasksDomain, project);
  const terminals = project === TERMINALS_PROJECT;
  const profiles = useProfiles();
  const [profile, setProfile] = useSelectedProfile(profiles);
  const [name, setName] = useState('');
  const list = Object.values(sessions).sort(sessionOrder);

  const create = (event: FormEvent) => {
    event.preventDefault();
    const id = newId('sess');
    const kind = terminals ? ('terminal' as const) : ('other' as const);
    const payload = { id, kind, ...(name.trim() && { name: name.trim() }), ...(terminals && profileFields(profile)) };
    report(dispatchTasks({ type: 'session.create', payload }));
    setName('');
  };
  const toggleFocus = (session: Session) =>
    report(
      dispatchFocus(
        isFocused(focus, session.id) ? { type: 'focus.blur', payload: { sessionId: session.id } } : { type: 'focus.set', payload: { sessionId: session.id } },
      ),
    );

  return (
    <section className="panel sessions" data-testid="sessions" aria-labelledby="sessions-title">
      <header className="panel-header">
        <h2 id="sessions-title">Sessions</h2>
        <span className="muted" data-testid="focus-summary">
          {focus.focused.length}/{focus.maxFocused} focused
        </span>
      </header>
      <form className="inline-form" onSubmit={create} data-testid="session-create-form">
        <input
          placeholder="Session name (optional)"
          aria-label="Session name"
          value={name}
          maxLength={200}
          onChange={(event) => setName(event.target.value)}
          data-testid="session-create-name"
        />
        {terminals && profiles.length > 1 && (
          <select
            aria-label="Profile: what the session runs"
            title={profile?.description}
            value={profile?.name ?? ''}
            onChange={(event) => setProfile(event.target.value)}
            data-testid="session-create-profile"
          >
            {profiles.map((option) => (
              <option key={option.name} value={option.name} title={option.description}>
                {option.name}
              </option>
            ))}
          </select>
        )}
        <button type="submit" data-testid="session-create-submit">
          New session
        </button>
      </form>
      {!terminals && (
        <p className="note" data-testid="no-terminals-note">
          Sessions of <code>{project}</code> have no terminal on this server (it runs them for <code>{TERMINALS_PROJECT}</code> only): each shows the status its
          own client reports.
        </p>
      )}
      {list.length === 0 && (
        <p className="empty">{loaded ? (terminals ? 'No sessions. Each new session gets a terminal on the server.' : 'No sessions.') : 'Loading…'}</p>
      )}
      <ul className="session-list">
        {list.map((session) => {
          const focused = isFocused(focus, session.id);
          const linkable = Object.values(tasks).filter((task) => !session.taskIds.includes(task.id));
          return (
            <li
              key={session.id}
              className={`session${focused ? ' focused' : ''}`}
              data-testid="session-row"
              data-session-id={session.id}
              data-focused={focused}
            >
              <div className="session-head">
                <button
                  type="button"
                  className="session-focus"
                  aria-pressed={focused}
                  title={focused ? 'Focused: click to unfocus' : 'Click to focus (shows its terminal)'}
                  onClick={() => toggleFocus(session)}
                  data-testid="session-focus"
                >
                  <span className={`status-dot session-${session.status}`} aria-hidden="true" />
                  <span className="session-name" data-testid="session-name">
                    {session.name}
                  </span>
                </button>
                {session.profile !== undefined && (
                  <span
                    className="badge"
                    title={session.prompt === undefined ? 'Profile' : `Profile, given the prompt: ${session.prompt}`}
                    data-testid="session-profile"
                  >
                    {session.profile}
                  </span>
                )}
                <span className="badge" title={session.reason} data-testid="session-status">
                  {session.status}
                  {session.exitCode !== undefined ? ` (${session.exitCode})` : session.signal !== undefined && ` (${session.signal})`}
                </span>
                {terminals && <StopSession session={session} />}
                <button
                  type="button"
                  className="icon danger"
                  aria-label={`Delete session ${session.name}`}
                  onClick={() => report(dispatchTasks({ type: 'session.delete', payload: { id: session.id } }))}
                  data-testid="session-delete"
                >
                  ×
                </button>
              </div>
              <div className="chips">
                {session.taskIds.flatMap((taskId) => {
                  const task = tasks[taskId];
                  if (!task) return [];
                  return (
                    <span key={taskId} className="chip" data-testid="session-task" data-task-id={taskId} data-status={task.status}>
                      <span className={`status-dot task-${task.status}`} aria-hidden="true" />
                      {task.title}
                      <button
                        type="button"
                        className="icon"
                        aria-label={`Unlink ${task.title} from ${session.name}`}
                        onClick={() => report(dispatchTasks({ type: 'session.removeTask', payload: { sessionId: session.id, taskId } }))}
                        data-testid="session-task-unlink"
                      >
                        ×
                      </button>
                    </span>
                  );
                })}
                {linkable.length > 0 && (
                  <select
                    aria-label={`Link a task to ${session.name}`}
                    value=""
                    onChange={(event) =>
                      event.target.value && report(dispatchTasks({ type: 'session.addTask', payload: { sessionId: session.id, taskId: event.target.value } }))
                    }
                    data-testid="session-link-task"
                  >
                    <option value="">+ task…</option>
                    {linkable.map((task) => (
                      <option key={task.id} value={task.id}>
                        {task.title}
                      </option>
                    ))}
                  </select>
                )}
              </div>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/**
 * Stops a session's program (`daemon.stopSession`, with `useCall`): shown while it runs or waits to,
 * and kept (disabled) until the stop is answered — the exit is recorded before the answer, so the row
 * shows `exited` first, and unmounting would cancel the call.
 */
function StopSession({ session }: { session: Session }) {
  const client = useLockstepClient();
  const stop = useCall(daemonService.stopSession);
  const report = useReport();
  const active = session.status === 'running' || session.status === 'starting';
  if ((!active && !stop.pending) || !client.supports(daemonService)) return null;
  const onClick = () =>
    report(
      stop.call({ sessionId: session.id }).catch((error: unknown) => {
        // The row went (the session was deleted) while stopping: nothing to report.
        if (!(error instanceof LockstepError && error.code === 'CANCELLED')) throw error;
      }),
    );
  return (
    <button
      type="button"
      className="small"
      disabled={stop.pending}
      title="Stop its program (SIGHUP, then SIGKILL if it lingers); the session stays, with its exit"
      onClick={onClick}
      data-testid="session-stop"
    >
      {stop.pending ? 'Stopping…' : 'Stop'}
    </button>
  );
}

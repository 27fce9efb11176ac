import { TASK_PRIORITIES, TASK_STATUSES, tasksDomain, type Session, type Task, type TaskPriority, type TaskStatus, type TasksState } from '@lockstep/core';
import { useCommand, useStream, type Dispatch } from '@lockstep/react';
import { memo, useState, type FormEvent } from 'react';
import { newId } from './ids.js';
import { TERMINALS_PROJECT, useProject } from './project.js';
import { startSessionCommands } from '../taskSession.js';
import { useProfiles, useSelectedProfile, type Profile } from './profiles.js';
import { useReport } from './toasts.js';
import { useLoaded } from './useLoaded.js';

export const STATUS_LABELS: Record<TaskStatus, string> = {
  pending: 'Pending',
  in_progress: 'In progress',
  blocked: 'Blocked',
  completed: 'Completed',
  cancelled: 'Cancelled',
};

const byTasks = (state: TasksState) => state.tasks;
const bySessions = (state: TasksState) => state.sessions;
const PRIORITY_RANK: Record<TaskPriority, number> = { urgent: 0, high: 1, medium: 2, low: 3 };
const boardOrder = (a: Task, b: Task) => PRIORITY_RANK[a.priority] - PRIORITY_RANK[b.priority] || a.createdAt - b.createdAt;

/**
 * The project's tasks in one column per status, with the sessions working on each. However many
 * there are, the board keeps its place on the page: the columns scroll inside it.
 */
export function TaskBoard() {
  const project = useProject();
  const tasks = useStream(tasksDomain, project, byTasks);
  const sessions = useStream(tasksDomain, project, bySessions);
  const dispatch = useCommand(tasksDomain, project);
  const loaded = useLoaded(tasksDomain, project);
  const profiles = useProfiles();
  const [profile] = useSelectedProfile(profiles);
  // "Start session" runs the picked profile where the server gives sessions a terminal.
  const startWith = project === TERMINALS_PROJECT ? profile : undefined;
  const columns = Object.fromEntries(TASK_STATUSES.map((status) => [status, [] as Task[]])) as Record<TaskStatus, Task[]>;
  for (const task of Object.values(tasks)) columns[task.status].push(task);
  const total = Object.keys(tasks).length;

  return (
    <section className="panel board" data-testid="task-board" aria-labelledby="board-title">
      <header className="panel-header">
        <h2 id="board-title">Tasks</h2>
        <span className="muted" data-testid="task-count" title={`The stream tasks/${project}`}>
          {loaded ? `${total} ${total === 1 ? 'task' : 'tasks'}` : 'Loading…'}
        </span>
      </header>
      <CreateTask dispatch={dispatch} />
      <div className="columns" data-testid="task-columns">
        {TASK_STATUSES.map((status) => (
          <div key={status} className={`column column-${status}`} data-testid="task-column" data-status={status}>
            <h3>
              {STATUS_LABELS[status]} <span className="muted">{columns[status].length}</span>
            </h3>
            {columns[status].sort(boardOrder).map((task) => (
              <TaskCard key={task.id} task={task} sessions={sessions} dispatch={dispatch} project={project} profile={startWith} />
            ))}
          </div>
        ))}
      </div>
    </section>
  );
}

function CreateTask({ dispatch }: { dispatch: Dispatch<typeof tasksDomain> }) {
  const report = useReport();
  const [title, setTitle] = useState('');
  const [priority, setPriority] = useState<TaskPriority>('medium');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!title.trim()) return;
    report(dispatch({ type: 'task.create', payload: { id: newId('task'), title: title.trim(), priority } }));
    setTitle('');
    setPriority('medium');
  };
  return (
    <form className="inline-form" onSubmit={submit} data-testid="task-create-form">
      <input
        placeholder="New task…"
        aria-label="Task title"
        value={title}
        maxLength={500}
        onChange={(event) => setTitle(event.target.value)}
        data-testid="task-create-title"
      />
      <select aria-label="Priority" value={priority} onChange={(event) => setPriority(event.target.value as TaskPriority)} data-testid="task-create-priority">
        {TASK_PRIORITIES.map((value) => (
          <option key={value} value={value}>
            {value}
          </option>
        ))}
      </select>
      <button type="submit" disabled={!title.trim()} data-testid="task-create-submit">
        Add task
      </button>
    </form>
  );
}

interface TaskCardProps {
  task: Task;
  sessions: Record<string, Session>;
  dispatch: Dispatch<typeof tasksDomain>;
  project: string;
  /** What "Start session" runs: this profile (given the task's prompt), else the server's shell. */
  profile: Profile | undefined;
}

const TaskCard = memo(function TaskCard({ task, sessions, dispatch, project, profile }: TaskCardProps) {
  const report = useReport();
  const linked = task.sessionIds.flatMap((id) => sessions[id] ?? []);
  const linkable = Object.values(sessions).filter((session) => !task.sessionIds.includes(session.id));
  const startSession = () => {
    const kind = project === TERMINALS_PROJECT ? ('terminal' as const) : ('other' as const);
    // The same commands as the daemon service's `executeTask` (taskSession.ts), sent optimistically.
    for (const command of startSessionCommands(task, { sessionId: newId('sess'), kind, profile })) report(dispatch(command));
  };
  return (
    <article className={`card priority-${task.priority}`} data-testid="task-card" data-task-id={task.id} data-status={task.status}>
      <div className="card-title">
        <span data-testid="task-title">{task.title}</span>
        <button
          type="button"
          className="icon danger"
          aria-label={`Delete task ${task.title}`}
          onClick={() => report(dispatch({ type: 'task.delete', payload: { id: task.id } }))}
          data-testid="task-delete"
        >
          ×
        </button>
      </div>
      {task.description && <p className="card-text">{task.description}</p>}
      <div className="card-row">
        <select
          aria-label={`Status of ${task.title}`}
          value={task.status}
          onChange={(event) => report(dispatch({ type: 'task.update', payload: { id: task.id, status: event.target.value as TaskStatus } }))}
          data-testid="task-status"
        >
          {TASK_STATUSES.map((status) => (
            <option key={status} value={status}>
              {STATUS_LABELS[status]}
            </option>
          ))}
        </select>
        <select
          aria-label={`Priority of ${task.title}`}
          className={`priority priority-${task.priority}`}
          value={task.priority}
          onChange={(event) => report(dispatch({ type: 'task.update', payload: { id: task.id, priority: event.target.value as TaskPriority } }))}
          data-testid="task-priority"
        >
          {TASK_PRIORITIES.map((value) => (
            <option key={value} value={value}>
              {value}
            </option>
          ))}
        </select>
        <span className="session-count" title="Sessions working on this task" data-testid="task-session-count" data-count={task.sessionIds.length}>
          {task.sessionIds.length}×
        </span>
      </div>
      <div className="chips">
        {linked.map((session) => (
          <span key={session.id} className="chip" data-testid="task-session" data-session-id={session.id}>
            <span className={`status-dot session-${session.status}`} aria-hidden="true" />
            {session.name}
            <button
              type="button"
              className="icon"
              aria-label={`Unlink ${session.name} from ${task.title}`}
              onClick={() => report(dispatch({ type: 'session.removeTask', payload: { sessionId: session.id, taskId: task.id } }))}
              data-testid="task-session-unlink"
            >
              ×
            </button>
          </span>
        ))}
      </div>
      <div className="card-row">
        {linkable.length > 0 && (
          <select
            aria-label={`Link a session to ${task.title}`}
            value=""
            onChange={(event) =>
              event.target.value && report(dispatch({ type: 'session.addTask', payload: { sessionId: event.target.value, taskId: task.id } }))
            }
            data-testid="task-link-session"
          >
            <option value="">Link session…</option>
            {linkable.map((session) => (
              <option key={session.id} value={session.id}>
                {session.name}
              </option>
            ))}
          </select>
        )}
        <button
          type="button"
          className="small"
          onClick={startSession}
          title={
            profile
              ? `A session running ${profile.name}${profile.acceptsPrompt ? ", given the task's prompt" : ''}, linked to this task`
              : 'A session linked to this task'
          }
          data-testid="task-start-session"
        >
          Start session
        </button>
      </div>
    </article>
  );
});

import { sessionCount, taskCount, type FocusState, type OrchestrationState, type Session, type Task, type TasksState } from '@lockstep/core';

/**
 * The REST representations, in the field notes' shapes (seeds 000–002): entities as the domains hold
 * them, plus the project they belong to and the derived counts (`sessionCount`, `taskCount`), which
 * are computed here and never stored.
 */

export type TaskView = Task & { projectId: string; sessionCount: number };
export type SessionView = Session & { projectId: string; taskCount: number };

export function taskView(task: Task, projectId: string): TaskView {
  return { ...task, projectId, sessionCount: sessionCount(task) };
}

export function sessionView(session: Session, projectId: string): SessionView {
  return { ...session, projectId, taskCount: taskCount(session) };
}

/** Newest first (a new task appears at the top of the board), then by id for a stable order. */
function newestFirst<T extends { createdAt: number; id: string }>(a: T, b: T): number {
  return b.createdAt - a.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

export function taskList(state: TasksState, projectId: string, filter: (task: Task) => boolean = () => true): TaskView[] {
  return Object.values(state.tasks)
    .filter(filter)
    .sort(newestFirst)
    .map((task) => taskView(task, projectId));
}

export function sessionList(state: TasksState, projectId: string): SessionView[] {
  return Object.values(state.sessions)
    .sort(newestFirst)
    .map((session) => sessionView(session, projectId));
}

export interface WorkspaceView {
  workspaceId: string;
  running: number;
  desired: number;
  /** The client holding the entry's lease, if any: the entry goes when that client is gone. */
  leasedTo?: string;
  updatedAt: number;
}

export function workspaceView(workspaceId: string, entry: OrchestrationState['workspaces'][string]): WorkspaceView {
  return { workspaceId, ...entry };
}

/** `global` holds the totals over every workspace (seed 000's `orchestration.global`). */
export function orchestrationView(state: OrchestrationState, version: number) {
  return {
    version,
    global: state.totals,
    workspaces: Object.entries(state.workspaces)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([workspaceId, entry]) => workspaceView(workspaceId, entry)),
  };
}

/** Seed 001's names: `focusedSessions` (in the order they gained focus), `totalFocused`, `maxFocused`. */
export function focusView(state: FocusState, projectId: string, version: number) {
  return {
    projectId,
    version,
    focusedSessions: state.focused,
    totalFocused: state.focused.length,
    maxFocused: state.maxFocused,
    lastActive: state.lastActive,
  };
}

import type { Draft } from 'immer';
import * as z from 'zod';
import { defineDomain } from '../domain.js';
import { reject } from '../errors.js';
import { entityIdSchema, own } from './keys.js';

export const TASK_STATUSES = ['pending', 'in_progress', 'blocked', 'completed', 'cancelled'] as const;
export const TASK_PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;
export const SESSION_KINDS = ['agent', 'terminal', 'cli', 'other'] as const;
export const SESSION_STATUSES = ['starting', 'running', 'idle', 'exited', 'failed'] as const;

export type TaskStatus = (typeof TASK_STATUSES)[number];
export type TaskPriority = (typeof TASK_PRIORITIES)[number];
export type SessionKind = (typeof SESSION_KINDS)[number];
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** Bounds on text fields and links; payloads beyond them are invalid params. */
export const TASK_LIMITS = {
  title: 500,
  text: 20_000,
  sessionName: 200,
  /** Links per task and per session; one more is rejected with `link.limit`. */
  links: 1_000,
  /** A session's status `reason` (why it ended). */
  reason: 500,
} as const;

/**
 * Names of session profiles (what program a session runs, chosen by the application that runs the
 * sessions' processes): a letter or digit, then up to 63 letters, digits, `.`, `_` or `-`.
 */
export const SESSION_PROFILE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Signal names as a session records them: `SIGHUP`, `SIGTERM`, `SIGKILL`, … */
export const SIGNAL_NAME_PATTERN = /^SIG[A-Z0-9+-]{1,16}$/;

export interface Task {
  id: string;
  title: string;
  description: string;
  status: TaskStatus;
  priority: TaskPriority;
  prompt?: string;
  /** Linked sessions, in link order. Mirrors `Session.taskIds`. */
  sessionIds: string[];
  createdAt: number;
  /** Last change of the task's own fields (links do not count). */
  updatedAt: number;
  /** Set while the task is `completed`. */
  completedAt?: number;
}

export interface Session {
  id: string;
  name: string;
  kind: SessionKind;
  status: SessionStatus;
  /** Set while the session is `exited` or `failed`, when its exit code is known. */
  exitCode?: number;
  /** Set while the session is `exited` or `failed`, when a signal ended its process (`SIGHUP`, …). */
  signal?: string;
  /** Set while the session is `exited` or `failed`: why, in a word or a sentence (`stopped`, a spawn error). */
  reason?: string;
  /** The profile the session runs (what program), when the client named one: see {@link SESSION_PROFILE_PATTERN}. */
  profile?: string;
  /** The prompt given to the session's program at start. */
  prompt?: string;
  /** Linked tasks, in link order. Mirrors `Task.sessionIds`. */
  taskIds: string[];
  createdAt: number;
  updatedAt: number;
}

export interface TasksState {
  tasks: Record<string, Task>;
  sessions: Record<string, Session>;
}

export interface TaskChanges {
  title?: string;
  description?: string;
  status?: TaskStatus;
  priority?: TaskPriority;
  /** `null` removes the prompt. */
  prompt?: string | null;
  /** A number when the task becomes completed, `null` when it leaves `completed`. */
  completedAt?: number | null;
}

export interface SessionChanges {
  name?: string;
  status?: SessionStatus;
  /** `null` when the session leaves `exited`/`failed` (a restart); so are `signal` and `reason`. */
  exitCode?: number | null;
  signal?: string | null;
  reason?: string | null;
}

export type LinkRemovalReason = 'removed' | 'taskDeleted' | 'sessionDeleted';

// ---------------------------------------------------------------------------------------------
// Derived values: counts are computed from the links, never stored.
// ---------------------------------------------------------------------------------------------

export const sessionCount = (task: Task): number => task.sessionIds.length;
export const taskCount = (session: Session): number => session.taskIds.length;

/** Every task grouped by status (each group in insertion order). */
export function tasksByStatus(state: TasksState): Record<TaskStatus, Task[]> {
  const groups = { pending: [], in_progress: [], blocked: [], completed: [], cancelled: [] } as Record<TaskStatus, Task[]>;
  for (const task of Object.values(state.tasks)) groups[task.status].push(task);
  return groups;
}

/** The tasks linked to a session (empty when the session does not exist). */
export function tasksOfSession(state: TasksState, sessionId: string): Task[] {
  return (own(state.sessions, sessionId)?.taskIds ?? []).flatMap((id) => own(state.tasks, id) ?? []);
}

/** The sessions linked to a task (empty when the task does not exist). */
export function sessionsOfTask(state: TasksState, taskId: string): Session[] {
  return (own(state.tasks, taskId)?.sessionIds ?? []).flatMap((id) => own(state.sessions, id) ?? []);
}

// ---------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------

const id = entityIdSchema;
const title = z.string().trim().min(1).max(TASK_LIMITS.title);
const text = z.string().max(TASK_LIMITS.text);
const sessionName = z.string().trim().min(1).max(TASK_LIMITS.sessionName);
const taskStatus = z.enum(TASK_STATUSES);
const priority = z.enum(TASK_PRIORITIES);
const sessionKind = z.enum(SESSION_KINDS);
const sessionStatus = z.enum(SESSION_STATUSES);
const exitCode = z
  .number()
  .int()
  .min(-(2 ** 31))
  .max(2 ** 32 - 1);
const signal = z.string().regex(SIGNAL_NAME_PATTERN, 'a signal name: SIG followed by capitals or digits');
const statusReason = z.string().trim().min(1).max(TASK_LIMITS.reason);
const profileName = z.string().regex(SESSION_PROFILE_PATTERN, 'a profile name: a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -');
const time = z.number();

const taskCreatedV2 = z.object({
  id,
  title: z.string(),
  description: z.string(),
  status: taskStatus,
  priority,
  prompt: z.string().optional(),
  completedAt: time.optional(),
  at: time,
});

// ---------------------------------------------------------------------------------------------
// Helpers for decide and evolve
// ---------------------------------------------------------------------------------------------

const ENDED: ReadonlySet<SessionStatus> = new Set(['exited', 'failed']);

function getTask(state: TasksState, taskId: string): Task {
  return own(state.tasks, taskId) ?? reject('task.notFound', `no task ${taskId}`, { id: taskId });
}

function getSession(state: TasksState, sessionId: string): Session {
  return own(state.sessions, sessionId) ?? reject('session.notFound', `no session ${sessionId}`, { id: sessionId });
}

/**
 * `list` without `item`, as a new array, or undefined when it is not there. Evolve assigns the
 * result instead of splicing the draft: a spliced draft array pays a proxy trap per moved element
 * (deleting a session with 1,000 links took ~0.5 s), while an assigned array stays a plain array
 * for the rest of the batch (~25 ms).
 */
function without(list: readonly string[], item: string): string[] | undefined {
  const index = list.indexOf(item);
  return index < 0 ? undefined : list.slice(0, index).concat(list.slice(index + 1));
}

function unlinkFromSession(session: Draft<Session>, taskId: string): void {
  const taskIds = without(session.taskIds, taskId);
  if (taskIds) session.taskIds = taskIds;
}

function unlinkFromTask(task: Draft<Task>, sessionId: string): void {
  const sessionIds = without(task.sessionIds, sessionId);
  if (sessionIds) task.sessionIds = sessionIds;
}

/**
 * The task board of a project (`tasks/<project>`): tasks, agent sessions and the many-to-many
 * links between them. Deleting a task or a session first emits one `session.taskRemoved` per link
 * (reason `taskDeleted` / `sessionDeleted`), then the deletion, so every unlink is an explicit event.
 */
export const tasksDomain = defineDomain({
  name: 'tasks',
  initialState: (): TasksState => ({ tasks: {}, sessions: {} }),
  commands: {
    'task.create': z.strictObject({
      id: id.optional(),
      title,
      description: text.optional(),
      priority: priority.optional(),
      prompt: text.optional(),
      status: taskStatus.optional(),
    }),
    'task.update': z.strictObject({
      id,
      title: title.optional(),
      description: text.optional(),
      status: taskStatus.optional(),
      priority: priority.optional(),
      prompt: text.nullable().optional(),
    }),
    'task.delete': z.strictObject({ id }),
    'session.create': z.strictObject({
      id: id.optional(),
      name: sessionName.optional(),
      kind: sessionKind.optional(),
      status: sessionStatus.optional(),
      profile: profileName.optional(),
      prompt: text.optional(),
    }),
    'session.update': z.strictObject({
      id,
      name: sessionName.optional(),
      status: sessionStatus.optional(),
      exitCode: exitCode.optional(),
      signal: signal.optional(),
      reason: statusReason.optional(),
    }),
    'session.delete': z.strictObject({ id }),
    'session.addTask': z.strictObject({ sessionId: id, taskId: id }),
    'session.removeTask': z.strictObject({ sessionId: id, taskId: id }),
  },
  events: {
    // v1 had no `priority`; stored v1 events are upcast with the default, `medium`.
    'task.created': { schema: taskCreatedV2, version: 2, upcast: { 1: (data: object) => ({ ...data, priority: 'medium' }) } },
    'task.updated': z.object({
      id,
      changes: z.object({
        title: z.string().optional(),
        description: z.string().optional(),
        status: taskStatus.optional(),
        priority: priority.optional(),
        prompt: z.string().nullable().optional(),
        completedAt: time.nullable().optional(),
      }),
      at: time,
    }),
    'task.deleted': z.object({ id }),
    // `profile` and `prompt` came later: optional, so every stored event still replays.
    'session.created': z.object({
      id,
      name: z.string(),
      kind: sessionKind,
      status: sessionStatus,
      profile: z.string().optional(),
      prompt: z.string().optional(),
      at: time,
    }),
    'session.updated': z.object({
      id,
      changes: z.object({
        name: z.string().optional(),
        status: sessionStatus.optional(),
        exitCode: exitCode.nullable().optional(),
        // Later additions, optional like the rest.
        signal: z.string().nullable().optional(),
        reason: z.string().nullable().optional(),
      }),
      at: time,
    }),
    'session.deleted': z.object({ id }),
    'session.taskAdded': z.object({ sessionId: id, taskId: id, at: time }),
    'session.taskRemoved': z.object({ sessionId: id, taskId: id, reason: z.enum(['removed', 'taskDeleted', 'sessionDeleted']) }),
  },
  // Literal values in returned events need `as const`: TypeScript widens them while it infers the
  // domain's types (see docs/domains.md).
  decide: {
    'task.create': (payload, state, ctx) => {
      const taskId = payload.id ?? ctx.newId('task');
      if (own(state.tasks, taskId)) reject('task.exists', `task ${taskId} already exists`, { id: taskId });
      const status = payload.status ?? 'pending';
      const data: z.input<typeof taskCreatedV2> = {
        id: taskId,
        title: payload.title,
        description: payload.description ?? '',
        status,
        priority: payload.priority ?? 'medium',
        at: ctx.now,
      };
      if (payload.prompt !== undefined) data.prompt = payload.prompt;
      if (status === 'completed') data.completedAt = ctx.now;
      return [{ type: 'task.created', data }];
    },
    'task.update': ({ id, ...patch }, state, ctx) => {
      const task = getTask(state, id);
      if (Object.values(patch).every((value) => value === undefined)) {
        reject('task.noChanges', 'task.update needs at least one of title, description, status, priority, prompt', { id });
      }
      const changes: TaskChanges = {};
      if (patch.title !== undefined && patch.title !== task.title) changes.title = patch.title;
      if (patch.description !== undefined && patch.description !== task.description) changes.description = patch.description;
      if (patch.priority !== undefined && patch.priority !== task.priority) changes.priority = patch.priority;
      if (patch.prompt === null) {
        if (task.prompt !== undefined) changes.prompt = null;
      } else if (patch.prompt !== undefined && patch.prompt !== task.prompt) {
        changes.prompt = patch.prompt;
      }
      if (patch.status !== undefined && patch.status !== task.status) {
        changes.status = patch.status;
        if (patch.status === 'completed') changes.completedAt = ctx.now;
        else if (task.status === 'completed') changes.completedAt = null;
      }
      // Values equal to the current ones are not a change: a repeated update is a no-op.
      if (Object.keys(changes).length === 0) return [];
      return [{ type: 'task.updated', data: { id, changes, at: ctx.now } }];
    },
    'task.delete': ({ id }, state) => {
      const task = getTask(state, id);
      return [
        ...task.sessionIds.map((sessionId) => ({
          type: 'session.taskRemoved' as const,
          data: { sessionId, taskId: id, reason: 'taskDeleted' as const },
        })),
        { type: 'task.deleted', data: { id } },
      ];
    },
    'session.create': (payload, state, ctx) => {
      const sessionId = payload.id ?? ctx.newId('sess');
      if (own(state.sessions, sessionId)) reject('session.exists', `session ${sessionId} already exists`, { id: sessionId });
      const data = {
        id: sessionId,
        name: payload.name ?? sessionId,
        kind: payload.kind ?? ('agent' as const),
        status: payload.status ?? ('starting' as const),
        ...(payload.profile !== undefined && { profile: payload.profile }),
        ...(payload.prompt !== undefined && { prompt: payload.prompt }),
        at: ctx.now,
      };
      return [{ type: 'session.created', data }];
    },
    'session.update': ({ id, ...patch }, state, ctx) => {
      const session = getSession(state, id);
      if (Object.values(patch).every((value) => value === undefined)) {
        reject('session.noChanges', 'session.update needs at least one of name, status, exitCode, signal, reason', { id });
      }
      const status = patch.status ?? session.status;
      const endInfo = (['exitCode', 'signal', 'reason'] as const).filter((field) => patch[field] !== undefined);
      if (endInfo.length > 0 && !ENDED.has(status)) {
        reject('session.exitCodeWhileActive', `${endInfo.join(', ')} need status exited or failed, not ${status}`, { id, status, fields: endInfo });
      }
      const changes: SessionChanges = {};
      if (patch.name !== undefined && patch.name !== session.name) changes.name = patch.name;
      if (status !== session.status) changes.status = status;
      for (const field of ['exitCode', 'signal', 'reason'] as const) {
        const value = patch[field];
        // Leaving exited/failed clears what said how it ended.
        if (value !== undefined && value !== session[field]) (changes as Record<string, unknown>)[field] = value;
        else if (!ENDED.has(status) && session[field] !== undefined) changes[field] = null;
      }
      if (Object.keys(changes).length === 0) return [];
      return [{ type: 'session.updated', data: { id, changes, at: ctx.now } }];
    },
    'session.delete': ({ id }, state) => {
      const session = getSession(state, id);
      return [
        ...session.taskIds.map((taskId) => ({
          type: 'session.taskRemoved' as const,
          data: { sessionId: id, taskId, reason: 'sessionDeleted' as const },
        })),
        { type: 'session.deleted', data: { id } },
      ];
    },
    // Idempotent: linking an already linked pair is a no-op, not a rejection.
    'session.addTask': ({ sessionId, taskId }, state, ctx) => {
      const session = getSession(state, sessionId);
      const task = getTask(state, taskId);
      if (session.taskIds.includes(taskId)) return [];
      if (session.taskIds.length >= TASK_LIMITS.links || task.sessionIds.length >= TASK_LIMITS.links) {
        reject('link.limit', `a task or session has at most ${TASK_LIMITS.links} links`, { sessionId, taskId });
      }
      return [{ type: 'session.taskAdded', data: { sessionId, taskId, at: ctx.now } }];
    },
    'session.removeTask': ({ sessionId, taskId }, state) => {
      const session = getSession(state, sessionId);
      getTask(state, taskId);
      if (!session.taskIds.includes(taskId)) {
        reject('link.notFound', `session ${sessionId} is not linked to task ${taskId}`, { sessionId, taskId });
      }
      return [{ type: 'session.taskRemoved', data: { sessionId, taskId, reason: 'removed' as const } }];
    },
  },
  evolve: {
    'task.created': (draft, { id, title, description, status, priority, prompt, completedAt, at }) => {
      const task: Task = { id, title, description, status, priority, sessionIds: [], createdAt: at, updatedAt: at };
      if (prompt !== undefined) task.prompt = prompt;
      if (completedAt !== undefined) task.completedAt = completedAt;
      draft.tasks[id] = task;
    },
    'task.updated': (draft, { id, changes, at }) => {
      const task = own(draft.tasks, id);
      if (!task) return;
      if (changes.title !== undefined) task.title = changes.title;
      if (changes.description !== undefined) task.description = changes.description;
      if (changes.status !== undefined) task.status = changes.status;
      if (changes.priority !== undefined) task.priority = changes.priority;
      if (changes.prompt === null) delete task.prompt;
      else if (changes.prompt !== undefined) task.prompt = changes.prompt;
      if (changes.completedAt === null) delete task.completedAt;
      else if (changes.completedAt !== undefined) task.completedAt = changes.completedAt;
      task.updatedAt = at;
    },
    'task.deleted': (draft, { id }) => {
      const task = own(draft.tasks, id);
      if (!task) return;
      // decide emitted a session.taskRemoved per link already; this only guards the invariant.
      for (const sessionId of task.sessionIds) {
        const session = own(draft.sessions, sessionId);
        if (session) unlinkFromSession(session, id);
      }
      delete draft.tasks[id];
    },
    'session.created': (draft, { id, name, kind, status, profile, prompt, at }) => {
      const session: Session = { id, name, kind, status, taskIds: [], createdAt: at, updatedAt: at };
      if (profile !== undefined) session.profile = profile;
      if (prompt !== undefined) session.prompt = prompt;
      draft.sessions[id] = session;
    },
    'session.updated': (draft, { id, changes, at }) => {
      const session = own(draft.sessions, id);
      if (!session) return;
      if (changes.name !== undefined) session.name = changes.name;
      if (changes.status !== undefined) session.status = changes.status;
      if (changes.exitCode === null) delete session.exitCode;
      else if (changes.exitCode !== undefined) session.exitCode = changes.exitCode;
      if (changes.signal === null) delete session.signal;
      else if (changes.signal !== undefined) session.signal = changes.signal;
      if (changes.reason === null) delete session.reason;
      else if (changes.reason !== undefined) session.reason = changes.reason;
      session.updatedAt = at;
    },
    'session.deleted': (draft, { id }) => {
      const session = own(draft.sessions, id);
      if (!session) return;
      for (const taskId of session.taskIds) {
        const task = own(draft.tasks, taskId);
        if (task) unlinkFromTask(task, id);
      }
      delete draft.sessions[id];
    },
    'session.taskAdded': (draft, { sessionId, taskId }) => {
      const session = own(draft.sessions, sessionId);
      const task = own(draft.tasks, taskId);
      if (!session || !task) return;
      // Links are always on both sides, so searching the shorter list is enough (and cheap).
      const linked = task.sessionIds.length <= session.taskIds.length ? task.sessionIds.includes(sessionId) : session.taskIds.includes(taskId);
      if (linked) return;
      session.taskIds.push(taskId);
      task.sessionIds.push(sessionId);
    },
    'session.taskRemoved': (draft, { sessionId, taskId }) => {
      const session = own(draft.sessions, sessionId);
      const task = own(draft.tasks, taskId);
      if (session) unlinkFromSession(session, taskId);
      if (task) unlinkFromTask(task, sessionId);
    },
  },
});

export type TasksDomain = typeof tasksDomain;

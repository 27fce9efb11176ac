import { TASK_STATUSES, deterministicIds, parseStreamName, type TasksState } from '@lockstep/core';
import { z } from 'zod';
import type { JsonReply } from '../http/reply.js';
import { commandReply, readReply, readStream, runCommand, type ApiContext, type ApiDeps, type ApiRoute } from './context.js';
import { PROJECT_ID, STOP_SIGNALS } from '../contract.js';
import { sessionNotFound, stopSession } from '../sessionControl.js';
import { commandBody, commandIdOf, invalid, parse, parseQuery, projectIdSchema, projectOf } from './requests.js';
import { sessionList, sessionView, taskList, taskView } from './views.js';

const listTasksQuery = z.strictObject({ projectId: projectIdSchema.optional(), status: z.enum(TASK_STATUSES).optional() });
const projectQuery = z.strictObject({ projectId: projectIdSchema.optional() });
const stopBodySchema = z.strictObject({ projectId: projectIdSchema.optional(), signal: z.enum(STOP_SIGNALS).optional() });
/** A `completedAt` a client sends (seed 002): milliseconds since the epoch. */
const completedAtSchema = z.number().int().nonnegative().max(8.64e15);

/**
 * Seed 002's clients send `completedAt` with `status: "completed"`. It is accepted there and only
 * there, and its value is not kept: the hub stamps `completedAt` with its own clock when the status
 * becomes `completed` (the time the change was recorded, on the one clock every event of the stream
 * is ordered by; a task already completed keeps its first stamp). Sent with any other status, or
 * without one, it is 400: the body would say two different things.
 */
function withoutCompletedAt(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || !Object.hasOwn(body, 'completedAt')) return body;
  const { completedAt, ...rest } = body as Record<string, unknown>;
  parse(completedAtSchema, completedAt, 'completedAt');
  if (rest['status'] !== 'completed') {
    throw invalid('invalid body', [
      { code: 'custom', path: ['completedAt'], message: 'completedAt goes with status "completed" (the hub stamps the time itself)' },
    ]);
  }
  return rest;
}

const tasksStream = (projectId: string) => `tasks/${projectId}`;

/**
 * The task board of seed 002: tasks and agent sessions of `tasks/<projectId>` (the default project
 * unless a `projectId` says otherwise), every change one command of the `tasks` domain.
 */
export function taskRoutes({ hub, daemon }: ApiDeps): ApiRoute[] {
  async function read(context: Pick<ApiContext, 'identity'>, projectId: string): Promise<{ state: TasksState; version: number }> {
    const { state, version } = await readStream(hub, context, tasksStream(projectId));
    return { state: state as TasksState, version };
  }

  /** Runs a command on the project's tasks stream, then answers `view` of the state it left. */
  async function command(
    context: ApiContext,
    type: string,
    pathIds: Record<string, string>,
    view: (state: TasksState, projectId: string) => unknown,
    status = 200,
    body?: unknown,
  ): Promise<JsonReply> {
    const { projectId, payload } = commandBody(body ?? (await context.body()), context.query, pathIds);
    const ack = await runCommand(hub, context, tasksStream(projectId), type, payload);
    const { state, version } = await read(context, projectId);
    return commandReply(ack, version, view(state, projectId), status);
  }

  /**
   * A task's body with the project that holds the task, when the request names none (`projectId` in
   * the body or the query): the seed's clients address tasks by id alone (`PATCH /api/tasks/task_123`).
   * The default project is looked at first, then every other project's board the caller may read, in
   * name order — a cost that grows with the number of projects, not of requests to the default one.
   * A task found nowhere is left to the default project, whose answer is the usual `task.notFound`.
   */
  async function inTaskProject(context: ApiContext, id: string, body: unknown): Promise<unknown> {
    // Not an object: the body's own parse refuses it, wherever the task is.
    if (body !== undefined && (body === null || typeof body !== 'object' || Array.isArray(body))) return body;
    if ((body !== undefined && Object.hasOwn(body, 'projectId')) || context.query.has('projectId')) return body;
    const holds = async (projectId: string) => {
      try {
        const { state } = await read(context, projectId);
        return Object.hasOwn(state.tasks, id);
      } catch {
        return false; // a board the caller may not read is not searched
      }
    };
    if (await holds(PROJECT_ID)) return body;
    const others = new Set<string>();
    for (const name of await hub.store.streams()) {
      const parsed = parseStreamName(name);
      if (parsed?.domain === 'tasks' && parsed.key !== PROJECT_ID) others.add(parsed.key);
    }
    for (const projectId of [...others].sort()) {
      if (await holds(projectId)) return { ...body, projectId };
    }
    return body;
  }

  /** An entity as it is now, or `{id, deleted: true}` when it is gone (a replayed create of a since-deleted one). */
  const taskOrGone = (id: string) => (state: TasksState, projectId: string) =>
    Object.hasOwn(state.tasks, id) ? taskView(state.tasks[id]!, projectId) : { id, deleted: true };
  /** A session with its program (pid, times, output) when this server runs the project's programs. */
  const sessionWithProcess = (session: TasksState['sessions'][string], projectId: string) =>
    daemon !== undefined && projectId === daemon.project && daemon.sessions !== undefined
      ? { ...sessionView(session, projectId), process: daemon.process(session.id) }
      : sessionView(session, projectId);
  const sessionOrGone = (id: string) => (state: TasksState, projectId: string) =>
    Object.hasOwn(state.sessions, id) ? sessionWithProcess(state.sessions[id]!, projectId) : { id, deleted: true };
  const link = (sessionId: string, taskId: string) => (state: TasksState, projectId: string) => ({
    session: Object.hasOwn(state.sessions, sessionId) ? sessionView(state.sessions[sessionId]!, projectId) : null,
    task: Object.hasOwn(state.tasks, taskId) ? taskView(state.tasks[taskId]!, projectId) : null,
  });

  return [
    {
      method: 'GET',
      path: '/api/tasks',
      handler: async (context) => {
        const { projectId = PROJECT_ID, status } = parseQuery(listTasksQuery, context.query);
        const { state, version } = await read(context, projectId);
        const tasks = taskList(state, projectId, status === undefined ? undefined : (task) => task.status === status);
        return readReply(context.request, version, { projectId, version, tasks });
      },
    },
    {
      method: 'POST',
      path: '/api/tasks',
      handler: async (context) => {
        const body = withoutCompletedAt(await context.body());
        // The id `decide` gives a task created without one derives from the command id: a retry
        // with the same Idempotency-Key creates (and answers) the same task.
        const given = (body as { id?: unknown } | undefined)?.id;
        const { projectId, payload } = commandBody(body, context.query);
        const commandId = commandIdOf(context.request);
        const id = typeof given === 'string' ? given : deterministicIds(commandId)('task');
        const ack = await runCommand(hub, context, tasksStream(projectId), 'task.create', payload, commandId);
        const { state, version } = await read(context, projectId);
        return commandReply(ack, version, taskOrGone(id)(state, projectId), 201);
      },
    },
    {
      method: 'PATCH',
      path: '/api/tasks/:id',
      handler: async (context) => {
        const id = context.params['id']!;
        const body = withoutCompletedAt(await context.body());
        return command(context, 'task.update', { id }, taskOrGone(id), 200, await inTaskProject(context, id, body));
      },
    },
    {
      method: 'DELETE',
      path: '/api/tasks/:id',
      handler: async (context) => {
        const id = context.params['id']!;
        return command(context, 'task.delete', { id }, () => ({ id, deleted: true }), 200, await inTaskProject(context, id, await context.body()));
      },
    },
    {
      method: 'GET',
      path: '/api/sessions',
      handler: async (context) => {
        const { projectId = PROJECT_ID } = parseQuery(projectQuery, context.query);
        const { state, version } = await read(context, projectId);
        return readReply(context.request, version, { projectId, version, sessions: sessionList(state, projectId) });
      },
    },
    {
      method: 'POST',
      path: '/api/sessions',
      handler: async (context) => {
        const body = await context.body();
        const given = (body as { id?: unknown } | undefined)?.id;
        const { projectId, payload } = commandBody(body, context.query);
        const commandId = commandIdOf(context.request);
        const id = typeof given === 'string' ? given : deterministicIds(commandId)('sess');
        const ack = await runCommand(hub, context, tasksStream(projectId), 'session.create', payload, commandId);
        const { state, version } = await read(context, projectId);
        return commandReply(ack, version, sessionOrGone(id)(state, projectId), 201);
      },
    },
    {
      method: 'POST',
      path: '/api/sessions/:id',
      handler: (context) => command(context, 'session.create', { id: context.params['id']! }, sessionOrGone(context.params['id']!), 201),
    },
    {
      method: 'GET',
      path: '/api/sessions/:id',
      handler: async (context) => {
        const { projectId = PROJECT_ID } = parseQuery(projectQuery, context.query);
        const id = context.params['id']!;
        const { state, version } = await read(context, projectId);
        if (!Object.hasOwn(state.sessions, id)) throw sessionNotFound(id);
        const view = sessionWithProcess(state.sessions[id]!, projectId);
        // Its program's figures (runtime, output) move without the stream's version: no ETag then.
        return 'process' in view ? { status: 200, body: view } : readReply(context.request, version, view);
      },
    },
    {
      method: 'POST',
      path: '/api/sessions/:id/stop',
      handler: async (context) => {
        const { projectId: bodyProject, signal } = parse(stopBodySchema, (await context.body()) ?? {}, 'body');
        const projectId = projectOf(context.query, bodyProject);
        const id = context.params['id']!;
        // Stopping changes the session (its exit is recorded): the caller needs the `write` grant.
        const stopped = await stopSession(hub, daemon, context.identity, projectId, id, signal);
        const { state, version } = await read(context, projectId);
        const body = sessionOrGone(id)(state, projectId);
        return { status: 200, body: { ...body, stopped }, headers: { ETag: `"${version}"` } };
      },
    },
    {
      method: 'PATCH',
      path: '/api/sessions/:id',
      handler: (context) => command(context, 'session.update', { id: context.params['id']! }, sessionOrGone(context.params['id']!)),
    },
    {
      method: 'DELETE',
      path: '/api/sessions/:id',
      handler: (context) => command(context, 'session.delete', { id: context.params['id']! }, () => ({ id: context.params['id']!, deleted: true })),
    },
    {
      method: 'POST',
      path: '/api/sessions/:sessionId/tasks/:taskId',
      handler: ({ params, ...context }) =>
        command(
          { params, ...context },
          'session.addTask',
          { sessionId: params['sessionId']!, taskId: params['taskId']! },
          link(params['sessionId']!, params['taskId']!),
        ),
    },
    {
      method: 'DELETE',
      path: '/api/sessions/:sessionId/tasks/:taskId',
      handler: ({ params, ...context }) =>
        command(
          { params, ...context },
          'session.removeTask',
          { sessionId: params['sessionId']!, taskId: params['taskId']! },
          link(params['sessionId']!, params['taskId']!),
        ),
    },
  ];
}

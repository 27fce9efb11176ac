import { TASK_STATUSES, deterministicIds, type TasksState } from '@lockstep/core';
import { z } from 'zod';
import type { JsonReply } from '../http/reply.js';
import { commandReply, readReply, readStream, runCommand, type ApiContext, type ApiDeps, type ApiRoute } from './context.js';
import { PROJECT_ID } from '../contract.js';
import { commandBody, commandIdOf, parseQuery, projectIdSchema } from './requests.js';
import { sessionList, sessionView, taskList, taskView } from './views.js';

const listTasksQuery = z.strictObject({ projectId: projectIdSchema.optional(), status: z.enum(TASK_STATUSES).optional() });
const projectQuery = z.strictObject({ projectId: projectIdSchema.optional() });

const tasksStream = (projectId: string) => `tasks/${projectId}`;

/**
 * The task board of seed 002: tasks and agent sessions of `tasks/<projectId>` (the default project
 * unless a `projectId` says otherwise), every change one command of the `tasks` domain.
 */
export function taskRoutes({ hub }: ApiDeps): ApiRoute[] {
  async function read(context: Pick<ApiContext, 'identity'>, projectId: string): Promise<{ state: TasksState; version: number }> {
    const { state, version } = await readStream(hub, context, tasksStream(projectId));
    return { state: state as TasksState, version };
  }

  /** Runs a command on the project's tasks stream, then answers `view` of the state it left. */
  async function command(context: ApiContext, type: string, pathIds: Record<string, string>, view: (state: TasksState, projectId: string) => unknown, status = 200): Promise<JsonReply> {
    const { projectId, payload } = commandBody(await context.body(), context.query, pathIds);
    const ack = await runCommand(hub, context, tasksStream(projectId), type, payload);
    const { state, version } = await read(context, projectId);
    return commandReply(ack, version, view(state, projectId), status);
  }

  /** An entity as it is now, or `{id, deleted: true}` when it is gone (a replayed create of a since-deleted one). */
  const taskOrGone = (id: string) => (state: TasksState, projectId: string) =>
    Object.hasOwn(state.tasks, id) ? taskView(state.tasks[id]!, projectId) : { id, deleted: true };
  const sessionOrGone = (id: string) => (state: TasksState, projectId: string) =>
    Object.hasOwn(state.sessions, id) ? sessionView(state.sessions[id]!, projectId) : { id, deleted: true };
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
        const body = await context.body();
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
    { method: 'PATCH', path: '/api/tasks/:id', handler: (context) => command(context, 'task.update', { id: context.params['id']! }, taskOrGone(context.params['id']!)) },
    {
      method: 'DELETE',
      path: '/api/tasks/:id',
      handler: (context) => command(context, 'task.delete', { id: context.params['id']! }, () => ({ id: context.params['id']!, deleted: true })),
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
        command({ params, ...context }, 'session.addTask', { sessionId: params['sessionId']!, taskId: params['taskId']! }, link(params['sessionId']!, params['taskId']!)),
    },
    {
      method: 'DELETE',
      path: '/api/sessions/:sessionId/tasks/:taskId',
      handler: ({ params, ...context }) =>
        command({ params, ...context }, 'session.removeTask', { sessionId: params['sessionId']!, taskId: params['taskId']! }, link(params['sessionId']!, params['taskId']!)),
    },
  ];
}

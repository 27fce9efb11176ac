import type { FocusState, OrchestrationState } from '@lockstep/core';
import { z } from 'zod';
import { ORCHESTRATION_KEY, PROJECT_ID } from '../contract.js';
import type { JsonReply } from '../http/reply.js';
import { commandReply, readReply, readStream, runCommand, type ApiContext, type ApiDeps, type ApiRoute } from './context.js';
import { parse, parseQuery, payloadWithPathIds, projectIdSchema, projectOf } from './requests.js';
import { focusView, orchestrationView, workspaceView } from './views.js';

const ORCHESTRATION_STREAM = `orchestration/${ORCHESTRATION_KEY}`;

/**
 * `PUT /api/focus` bodies. One session: `focused` picks the command (`focus.set` / `focus.blur`). The
 * whole set (grid layout): `sessionIds` → `focus.setMany`. Session ids are checked by the focus domain
 * (and that they exist, by the server's `checkCommand`), like any focus command's.
 */
const focusOneSchema = z.strictObject({ projectId: projectIdSchema.optional(), sessionId: z.unknown(), focused: z.boolean() });
const focusManySchema = z.strictObject({ projectId: projectIdSchema.optional(), sessionIds: z.unknown() });
/** `PUT /api/focus/config`: `maxFocused` is checked by the focus domain (1–64). */
const focusConfigSchema = z.strictObject({ projectId: projectIdSchema.optional(), maxFocused: z.unknown() });
const projectQuery = z.strictObject({ projectId: projectIdSchema.optional() });

type FocusCommand = { type: 'focus.set' | 'focus.blur'; payload: { sessionId: unknown } } | { type: 'focus.setMany'; payload: { sessionIds: unknown } };

/** The focus command a `PUT /api/focus` body asks for, and its project. */
function focusCommandOf(body: unknown, query: URLSearchParams): { projectId: string; command: FocusCommand } {
  if (typeof body === 'object' && body !== null && Object.hasOwn(body, 'sessionIds')) {
    const { projectId, sessionIds } = parse(focusManySchema, body, 'body');
    return { projectId: projectOf(query, projectId), command: { type: 'focus.setMany', payload: { sessionIds } } };
  }
  const { projectId, sessionId, focused } = parse(focusOneSchema, body, 'body');
  return { projectId: projectOf(query, projectId), command: { type: focused ? 'focus.set' : 'focus.blur', payload: { sessionId } } };
}

/**
 * Seed 000's orchestration counts (`orchestration/default`: per-workspace running and desired, with
 * global totals that are always the sums) and seed 001's focus sets (`focus/<projectId>`).
 */
export function orchestrationRoutes({ hub }: ApiDeps): ApiRoute[] {
  async function setCount(context: ApiContext, type: 'workspace.setDesired' | 'workspace.setRunning'): Promise<JsonReply> {
    const workspaceId = context.params['workspaceId']!;
    const payload = payloadWithPathIds(await context.body(), { workspaceId });
    const ack = await runCommand(hub, context, ORCHESTRATION_STREAM, type, payload);
    return orchestrationReply(context, ack, workspaceId);
  }

  async function orchestrationReply(context: ApiContext, ack: Awaited<ReturnType<typeof runCommand>>, workspaceId: string): Promise<JsonReply> {
    const { state, version } = await readStream(hub, context, ORCHESTRATION_STREAM);
    const { workspaces, totals } = state as OrchestrationState;
    const entry = Object.hasOwn(workspaces, workspaceId) ? workspaceView(workspaceId, workspaces[workspaceId]!) : { workspaceId, removed: true };
    return commandReply(ack, version, { workspace: entry, global: totals, version });
  }

  async function readFocus(context: ApiContext, projectId: string) {
    const { state, version } = await readStream(hub, context, `focus/${projectId}`);
    return focusView(state as FocusState, projectId, version);
  }

  return [
    {
      method: 'GET',
      path: '/api/orchestration',
      handler: async (context) => {
        parseQuery(z.strictObject({}), context.query);
        const { state, version } = await readStream(hub, context, ORCHESTRATION_STREAM);
        return readReply(context.request, version, orchestrationView(state as OrchestrationState, version));
      },
    },
    { method: 'PUT', path: '/api/orchestration/workspaces/:workspaceId/desired', handler: (context) => setCount(context, 'workspace.setDesired') },
    { method: 'PUT', path: '/api/orchestration/workspaces/:workspaceId/running', handler: (context) => setCount(context, 'workspace.setRunning') },
    {
      method: 'DELETE',
      path: '/api/orchestration/workspaces/:workspaceId',
      handler: async (context) => {
        const workspaceId = context.params['workspaceId']!;
        const ack = await runCommand(hub, context, ORCHESTRATION_STREAM, 'workspace.remove', { workspaceId });
        return orchestrationReply(context, ack, workspaceId);
      },
    },
    {
      method: 'GET',
      path: '/api/focus',
      handler: async (context) => {
        const { projectId = PROJECT_ID } = parseQuery(projectQuery, context.query);
        const view = await readFocus(context, projectId);
        return readReply(context.request, view.version, view);
      },
    },
    {
      method: 'PUT',
      path: '/api/focus',
      handler: async (context) => {
        const { projectId, command } = focusCommandOf(await context.body(), context.query);
        const ack = await runCommand(hub, context, `focus/${projectId}`, command.type, command.payload);
        const view = await readFocus(context, projectId);
        return commandReply(ack, view.version, view);
      },
    },
    {
      method: 'PUT',
      path: '/api/focus/config',
      handler: async (context) => {
        const { projectId, maxFocused } = parse(focusConfigSchema, await context.body(), 'body');
        const project = projectOf(context.query, projectId);
        const ack = await runCommand(hub, context, `focus/${project}`, 'focus.configure', { maxFocused });
        const view = await readFocus(context, project);
        return commandReply(ack, view.version, view);
      },
    },
  ];
}

import type { FocusState, OrchestrationState } from '@lockstep/core';
import { z } from 'zod';
import { ORCHESTRATION_KEY, PROJECT_ID } from '../contract.js';
import type { JsonReply } from '../http/reply.js';
import { commandReply, readReply, readStream, runCommand, type ApiContext, type ApiDeps, type ApiRoute } from './context.js';
import { parse, parseQuery, payloadWithPathIds, projectIdSchema } from './requests.js';
import { focusView, orchestrationView, workspaceView } from './views.js';

const ORCHESTRATION_STREAM = `orchestration/${ORCHESTRATION_KEY}`;

/** `focused` picks the command; `sessionId` is checked by the focus domain, like any focus command. */
const focusBodySchema = z.strictObject({
  projectId: projectIdSchema.optional(),
  sessionId: z.unknown(),
  focused: z.boolean(),
});
const projectQuery = z.strictObject({ projectId: projectIdSchema.optional() });

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
        const { projectId = PROJECT_ID, sessionId, focused } = parse(focusBodySchema, await context.body(), 'body');
        const ack = await runCommand(hub, context, `focus/${projectId}`, focused ? 'focus.set' : 'focus.blur', { sessionId });
        const view = await readFocus(context, projectId);
        return commandReply(ack, view.version, view);
      },
    },
  ];
}

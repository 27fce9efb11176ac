import { parseStreamName } from '@lockstep/core';
import { z } from 'zod';
import { PROJECT_ID } from '../contract.js';
import type { ApiDeps, ApiRoute } from './context.js';
import { parseQuery } from './requests.js';

const noQuery = z.strictObject({});

/** One row of `GET /api/projects`. */
export interface ProjectView {
  projectId: string;
}

/**
 * The projects a client can open: the default project, then every project whose task board holds
 * something — a `tasks/<projectId>` stream in the store, whoever wrote it (the dashboard, the CLI,
 * `POST /api/tasks {projectId}`, an agent over WebSocket). A project nobody has written to yet is
 * not listed (opening it is enough to start it). With an `authorize` hook, only the projects the
 * caller may read are.
 */
export function projectRoutes({ hub }: ApiDeps): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/api/projects',
      handler: async (context) => {
        parseQuery(noQuery, context.query);
        const keys = new Set<string>();
        for (const name of await hub.store.streams()) {
          const parsed = parseStreamName(name);
          if (parsed?.domain === 'tasks' && parsed.key !== PROJECT_ID) keys.add(parsed.key);
        }
        const ids = [PROJECT_ID, ...[...keys].sort()];
        const readable = await filterReadable(ids, (id) => hub.authorize(context.identity, `tasks/${id}`, 'read'));
        const projects: ProjectView[] = readable.map((projectId) => ({ projectId }));
        return { status: 200, body: { projects } };
      },
    },
  ];
}

async function filterReadable(ids: readonly string[], check: (id: string) => Promise<void>): Promise<string[]> {
  const allowed = await Promise.all(
    ids.map((id) =>
      check(id).then(
        () => true,
        () => false,
      ),
    ),
  );
  return ids.filter((_, index) => allowed[index]);
}

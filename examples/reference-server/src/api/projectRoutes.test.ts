import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Identity } from '@lockstep/server';
import { describe, expect, it } from 'vitest';
import { PROJECT_ID } from '../contract.js';
import { call, startTestServer } from '../testing.js';
import type { ApiDeps } from './context.js';
import { projectRoutes } from './projectRoutes.js';

/**
 * `GET /api/projects`, called on its route table (it is registered in apiHandler.ts with the
 * others): the projects are the task boards the store holds, whoever wrote them.
 */
async function listProjects(deps: Pick<ApiDeps, 'hub'>, identity?: Identity, query = ''): Promise<unknown> {
  const [route] = projectRoutes({ ...deps, openEventStream: () => expect.fail('no event stream') });
  expect(route).toMatchObject({ method: 'GET', path: '/api/projects' });
  const reply = await route!.handler({
    request: { headers: {} } as IncomingMessage,
    response: {} as ServerResponse,
    params: {},
    query: new URLSearchParams(query),
    identity,
    body: async () => undefined,
  });
  expect(reply?.status).toBe(200);
  return reply?.body;
}

describe('GET /api/projects', () => {
  it('lists the default project, then every project with a task board in the store, whoever wrote it', async () => {
    const server = await startTestServer({ terminals: false });
    expect(await listProjects(server)).toEqual({ projects: [{ projectId: PROJECT_ID }] });

    // A task from another app, over REST (the seed's request), and a session over lockstep/1.
    expect(
      (await call(server.url, 'POST', '/api/tasks', { body: { projectId: 'proj_123', title: 'New task from external app', priority: 'high' } })).status,
    ).toBe(201);
    await server.hub.execute({ id: 'c1', stream: 'tasks/alpha', type: 'session.create', payload: { id: 's1' } });
    // Other domains' streams are not projects; neither is a task board that was only read.
    await server.hub.execute({ id: 'c2', stream: 'orchestration/beta', type: 'workspace.setDesired', payload: { workspaceId: 'w', desired: 1 } });
    await server.hub.read('tasks/gamma');

    expect(await listProjects(server)).toEqual({ projects: [{ projectId: PROJECT_ID }, { projectId: 'alpha' }, { projectId: 'proj_123' }] });
    await expect(listProjects(server, undefined, 'extra=1')).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
  });

  it('lists only the projects the caller may read when an authorize hook decides', async () => {
    const server = await startTestServer({
      terminals: false,
      hubOptions: { authorize: (identity, stream) => identity?.id === 'admin' || stream !== 'tasks/secret' },
    });
    for (const project of ['secret', 'shared']) {
      await server.hub.execute({ id: `c-${project}`, stream: `tasks/${project}`, type: 'task.create', payload: { title: 'x' } });
    }
    expect(await listProjects(server, { id: 'bob' })).toEqual({ projects: [{ projectId: PROJECT_ID }, { projectId: 'shared' }] });
    expect(await listProjects(server, { id: 'admin' })).toEqual({ projects: [{ projectId: PROJECT_ID }, { projectId: 'secret' }, { projectId: 'shared' }] });
  });
});

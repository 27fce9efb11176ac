import { describe, expect, it } from 'vitest';
import { STREAM_PARAM_PATTERN } from '../api/streamRoutes.js';
import { Router, type Route } from './router.js';

const routes: Route<string>[] = [
  { method: 'GET', path: '/api/streams/:stream', handler: 'snapshot' },
  { method: 'GET', path: '/api/streams/:stream/events', handler: 'events' },
  { method: 'PUT', path: '/api/orchestration/workspaces/:workspaceId/desired', handler: 'desired' },
  { method: 'GET', path: '/api/tasks', handler: 'list' },
  { method: 'POST', path: '/api/tasks', handler: 'create' },
];
const router = new Router(routes, { stream: STREAM_PARAM_PATTERN });
const found = (method: string, path: string) => {
  const match = router.match(method, path);
  return match.kind === 'found' ? [match.route.handler, match.params] : match;
};

describe('Router', () => {
  it('takes a stream as two segments or as one with the slash encoded, even when its key is "events"', () => {
    expect(found('GET', '/api/streams/tasks/default')).toEqual(['snapshot', { stream: 'tasks/default' }]);
    expect(found('GET', '/api/streams/tasks%2Fdefault')).toEqual(['snapshot', { stream: 'tasks/default' }]);
    expect(found('GET', '/api/streams/tasks/default/events')).toEqual(['events', { stream: 'tasks/default' }]);
    expect(found('GET', '/api/streams/tasks%2Fdefault/events')).toEqual(['events', { stream: 'tasks/default' }]);
    expect(found('GET', '/api/streams/tasks/events')).toEqual(['snapshot', { stream: 'tasks/events' }]);
    expect(found('GET', '/api/streams/tasks')).toEqual({ kind: 'notFound' });
  });

  it('decodes parameters after matching, so an encoded slash stays inside its segment', () => {
    expect(found('PUT', '/api/orchestration/workspaces/%2Fhome%2Fme%2Fapi/desired')).toEqual(['desired', { workspaceId: '/home/me/api' }]);
    expect(found('PUT', '/api/orchestration/workspaces/home/me/desired')).toEqual({ kind: 'notFound' });
    expect(() => router.match('PUT', '/api/orchestration/workspaces/%E0%A4%A/desired')).toThrow(expect.objectContaining({ code: 'INVALID_PARAMS' }));
  });

  it('tells a wrong method from an unknown path, and answers HEAD with GET routes', () => {
    expect(found('DELETE', '/api/tasks')).toEqual({ kind: 'wrongMethod', allowed: ['GET', 'HEAD', 'POST'] });
    expect(found('HEAD', '/api/tasks')).toEqual(['list', {}]);
    expect(found('GET', '/api/tasks/')).toEqual(['list', {}]);
    expect(found('GET', '/api/task')).toEqual({ kind: 'notFound' });
  });
});

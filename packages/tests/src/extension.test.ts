import { ErrorCodes, LockstepError, createMemoryLink } from '@lockstep/core';
import { Hub, type ExtensionSession, type HubExtension } from '@lockstep/server';
import { describe, expect, it } from 'vitest';

/** A tiny extension: `echo.say` answers and also notifies, `echo.fail` throws a documented error. */
function echoExtension() {
  const closedSessions: string[] = [];
  let closed = false;
  const extension: HubExtension = {
    name: 'echo',
    methods: {
      'echo.say': (params, session: ExtensionSession) => {
        session.notify('echo.heard', { params, clientId: session.clientId });
        return { said: params };
      },
      'echo.fail': () => {
        throw new LockstepError('INVALID_PARAMS', 'nothing to echo');
      },
    },
    onSessionClosed: (session) => closedSessions.push(session.clientId),
    close: () => {
      closed = true;
    },
  };
  return { extension, closedSessions, isClosed: () => closed };
}

function peer(hub: Hub) {
  const link = createMemoryLink();
  hub.accept(link.server);
  const frames: Array<Record<string, unknown>> = [];
  link.client.frames.subscribe((frame) => frames.push(JSON.parse(frame as string)));
  let id = 0;
  const send = (method: string, params: unknown = {}) => link.client.send(JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }));
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return { link, frames, send, settle };
}

describe('hub extensions', () => {
  it('adds methods reachable after hello, with notifications to the calling connection', async () => {
    const echo = echoExtension();
    const hub = new Hub({ domains: [], extensions: [echo.extension] });
    const p = peer(hub);
    p.send('echo.say', 'too early');
    await p.settle();
    expect(p.frames.at(-1)).toMatchObject({ id: 1, error: { code: ErrorCodes.HANDSHAKE_REQUIRED } });
    // Pipelined right behind hello: they wait for it instead of being refused.
    p.send('hello', { protocol: 1, clientId: 'ext-client' });
    p.send('echo.say', 'hi');
    p.send('echo.fail');
    await p.settle();
    expect(p.frames).toContainEqual({ jsonrpc: '2.0', method: 'echo.heard', params: { params: 'hi', clientId: 'ext-client' } });
    expect(p.frames).toContainEqual({ jsonrpc: '2.0', id: 3, result: { said: 'hi' } });
    expect(p.frames.find((frame) => frame['id'] === 4)).toMatchObject({ error: { code: ErrorCodes.INVALID_PARAMS, message: 'nothing to echo' } });
    p.link.client.close();
    await p.settle();
    expect(echo.closedSessions).toEqual(['ext-client']);
    await hub.close();
    expect(echo.isClosed()).toBe(true);
  });

  it('refuses an extension that takes a core or already taken method', () => {
    const taken: HubExtension = { name: 'bad', methods: { subscribe: () => ({}) } };
    expect(() => new Hub({ domains: [], extensions: [taken] })).toThrow(/method subscribe is already taken/);
    const echo = echoExtension();
    expect(() => new Hub({ domains: [], extensions: [echo.extension, echoExtension().extension] })).toThrow(/echo.say is already taken/);
  });
});

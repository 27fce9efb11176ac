import { ErrorCodes, LockstepError, createMemoryLink, defineService, method, notification, type MemoryLink } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import * as z from 'zod';
import { FakeClock, TestPeer, type PeerMessage } from '@lockstep/core/testing';
import { Hub, type HubOptions } from './hub.js';
import type { Identity } from './identity.js';
import type { Peer } from './peer.js';
import { implement, type ServiceContext } from './serviceRegistry.js';

/**
 * Services on the hub, seen from a peer that writes JSON-RPC by hand (as a Python manager would):
 * the hub answers a service's methods, calls the methods a client announced, and both sides cancel.
 */

const orchestrate = defineService('orchestrate', '1.2.0', {
  route: method({ params: z.object({ command: z.string().min(1) }), result: z.object({ agent: z.string() }) }),
  slow: method({ params: z.object({}), result: z.object({ done: z.boolean() }) }),
  fail: method({ params: z.object({ how: z.enum(['lockstep', 'bug', 'rejection']) }), result: z.object({}) }),
  progress: notification({ params: z.object({ percent: z.number().min(0).max(100) }) }),
});

const manager = defineService('manager', '1.4.0', {
  createPane: method({ params: z.object({ type: z.literal('terminal'), command: z.string() }), result: z.object({ paneId: z.string() }) }),
  paneClosed: notification({ params: z.object({ paneId: z.string() }) }),
});

type Msg = PeerMessage;

/** A raw peer on a memory link to the hub: a TestPeer, with this file's helpers. */
class Wire extends TestPeer {
  constructor(
    readonly link: MemoryLink,
    private readonly clock: FakeClock,
  ) {
    super(link.client);
  }

  async hello(params: Record<string, unknown> = {}): Promise<Msg> {
    const answer = await this.call('hello', { protocol: 1, ...params });
    expect(answer.error).toBeUndefined();
    return answer;
  }
}

async function until<T>(clock: FakeClock, probe: () => T | undefined, turns = 200): Promise<T> {
  for (let i = 0; i < turns; i++) {
    const value = probe();
    if (value !== undefined) return value;
    await clock.flush();
  }
  throw new Error(`nothing arrived within ${turns} turns`);
}

function setup(options: Partial<HubOptions> = {}) {
  const clock = new FakeClock();
  const errors: Array<{ error: unknown; context: string }> = [];
  const hub = new Hub({ domains: [], clock, onError: (error, context) => errors.push({ error, context }), ...options });
  const connect = () => {
    const link = createMemoryLink({ clock });
    hub.accept(link.server);
    return new Wire(link, clock);
  };
  const greeted = async (hello: Record<string, unknown> = {}) => {
    const wire = connect();
    await wire.hello(hello);
    return wire;
  };
  return { hub, clock, errors, connect, greeted };
}

/** Handlers that record what they saw; `slow` waits until its signal aborts or `finish` is called. */
function orchestrator() {
  const seen: Array<{ params: unknown; context: Omit<ServiceContext, 'peer' | 'signal'> }> = [];
  const signals: AbortSignal[] = [];
  let finish: (() => void) | undefined;
  const handlers = {
    route: ({ command }: { command: string }, { peer, signal, ...context }: ServiceContext) => {
      seen.push({ params: { command }, context });
      return { agent: `agent-for-${command}` };
    },
    slow: (_: object, { signal }: ServiceContext) =>
      new Promise<{ done: boolean }>((resolve, reject) => {
        signals.push(signal);
        finish = () => resolve({ done: true });
        signal.addEventListener('abort', () => reject(new Error('aborted')));
      }),
    fail: ({ how }: { how: 'lockstep' | 'bug' | 'rejection' }): never => {
      if (how === 'lockstep') throw new LockstepError('COMMAND_REJECTED', 'no agent is free', { reason: 'agents.busy' });
      throw new Error('a bug in the handler');
    },
  };
  return { handlers, seen, signals, finish: () => finish?.() };
}

describe('hub services: client → hub calls', () => {
  it('announces its services and app in hello, and answers a method with validated params and the caller’s context', async () => {
    const { hub, greeted } = setup({ app: { name: 'orchflow', version: '2.1.3' } });
    const impl = orchestrator();
    hub.serve(orchestrate, impl.handlers);
    const wire = await greeted({ clientId: 'manager-1' });
    const hello = wire.received.find((m) => m.id === 1)!;
    expect(hello.result.services).toEqual([{ name: 'orchestrate', version: '1.2.0' }]);
    expect(hello.result.app).toEqual({ name: 'orchflow', version: '2.1.3' });

    const answer = await wire.call('orchestrate.route', { command: 'run tests' });
    expect(answer).toEqual({ jsonrpc: '2.0', id: 2, result: { agent: 'agent-for-run tests' } });
    expect(impl.seen).toEqual([
      { params: { command: 'run tests' }, context: { identity: undefined, clientId: 'manager-1', sessionId: expect.any(String), callId: 2 } },
    ]);

    const invalid = await wire.call('orchestrate.route', { command: '' });
    expect(invalid.error).toMatchObject({ code: ErrorCodes.INVALID_PARAMS, data: { issues: [expect.objectContaining({ path: ['command'] })] } });
    expect((await wire.call('orchestrate.nope', {})).error?.code).toBe(ErrorCodes.METHOD_NOT_FOUND);
    expect(impl.seen).toHaveLength(1);
  });

  it('needs hello first, and passes a handler’s LockstepError through while a bug is INTERNAL_ERROR, reported', async () => {
    const { hub, connect, errors } = setup();
    hub.serve(orchestrate, orchestrator().handlers);
    const wire = connect();
    expect((await wire.call('orchestrate.route', { command: 'x' })).error?.code).toBe(ErrorCodes.HANDSHAKE_REQUIRED);
    await wire.hello();
    const refused = await wire.call('orchestrate.fail', { how: 'lockstep' });
    expect(refused.error).toEqual({ code: ErrorCodes.COMMAND_REJECTED, message: 'no agent is free', data: { reason: 'agents.busy' } });
    expect(errors).toEqual([]);
    const bug = await wire.call('orchestrate.fail', { how: 'bug' });
    expect(bug.error).toEqual({ code: ErrorCodes.INTERNAL_ERROR, message: 'internal error' });
    expect(errors).toEqual([{ error: new Error('a bug in the handler'), context: 'handling orchestrate.fail' }]);
  });

  it('asks the authorize hook with the method and `call`, unless the service brings its own rule', async () => {
    const asked: Array<[string | undefined, string, string]> = [];
    const { hub, greeted } = setup({
      authenticate: ({ token }) => (token ? { id: token } : undefined),
      authorize: (identity, resource, action) => {
        asked.push([identity?.id, resource, action]);
        return identity?.id === 'alice';
      },
    });
    hub.serve(orchestrate, orchestrator().handlers);
    const own = defineService('own', '1.0.0', { ping: method({ params: z.object({}), result: z.object({ pong: z.literal(true) }) }) });
    const ruled: Array<[string | undefined, string]> = [];
    hub.serve(own, { ping: () => ({ pong: true as const }) }, { authorize: (identity, name) => (ruled.push([identity?.id, name]), identity?.id === 'bob') });

    const alice = await greeted({ token: 'alice' });
    const bob = await greeted({ token: 'bob' });
    expect((await alice.call('orchestrate.route', { command: 'a' })).result).toEqual({ agent: 'agent-for-a' });
    const refused = await bob.call('orchestrate.route', { command: 'b' });
    expect(refused.error).toEqual({
      code: ErrorCodes.FORBIDDEN,
      message: 'not allowed to call orchestrate.route',
      data: { method: 'orchestrate.route', action: 'call' },
    });
    expect(asked).toEqual([
      ['alice', 'orchestrate.route', 'call'],
      ['bob', 'orchestrate.route', 'call'],
    ]);
    expect((await bob.call('own.ping', {})).result).toEqual({ pong: true });
    expect((await alice.call('own.ping', {})).error?.code).toBe(ErrorCodes.FORBIDDEN);
    expect(ruled).toEqual([
      ['bob', 'own.ping'],
      ['alice', 'own.ping'],
    ]);
    expect(asked).toHaveLength(2);
  });

  it('aborts a handler’s signal on $/cancelRequest and answers CANCELLED; a closed connection aborts it too', async () => {
    const { hub, greeted, errors } = setup();
    const impl = orchestrator();
    hub.serve(orchestrate, impl.handlers);
    const wire = await greeted();
    const id = wire.sendRequest('orchestrate.slow', {});
    await until(wire['clock'], () => impl.signals[0]);
    wire.send({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id } });
    expect((await wire.response(id)).error).toEqual({ code: ErrorCodes.CANCELLED, message: 'orchestrate.slow was cancelled' });
    expect(impl.signals[0]!.aborted).toBe(true);
    // Cancelling what is not running (done, or never sent) is ignored.
    wire.send({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 'nothing' } });

    const other = await greeted();
    other.sendRequest('orchestrate.slow', {});
    const signal = await until(wire['clock'], () => impl.signals[1]);
    expect(signal.aborted).toBe(false);
    other.link.client.close('gone');
    await until(wire['clock'], () => (signal.aborted ? true : undefined));
    expect(errors).toEqual([]);
  });

  it('counts calls against the connection’s rate limit like any message', async () => {
    const { hub, greeted } = setup({ rateLimit: { messagesPerSecond: 1, burst: 3 } });
    hub.serve(orchestrate, orchestrator().handlers);
    const wire = await greeted(); // hello took one token
    const answers = await Promise.all([1, 2, 3].map((n) => wire.call('orchestrate.route', { command: `c${n}` })));
    expect(answers.map((answer) => answer.error?.code ?? 'ok')).toEqual(['ok', 'ok', ErrorCodes.RATE_LIMITED]);
  });

  it('delivers client notifications to listeners, validated; invalid ones are reported, never answered', async () => {
    const { hub, connect, errors } = setup();
    const heard: Array<{ percent: number; clientId: string }> = [];
    const stop = hub.on(orchestrate.progress, ({ percent }, { clientId }) => heard.push({ percent, clientId }));
    const wire = connect();
    wire.send({ jsonrpc: '2.0', method: 'orchestrate.progress', params: { percent: 5 } }); // before hello: ignored
    await wire.hello({ clientId: 'm1' });
    wire.send({ jsonrpc: '2.0', method: 'orchestrate.progress', params: { percent: 40 } });
    wire.send({ jsonrpc: '2.0', method: 'orchestrate.progress', params: { percent: 400 } });
    wire.send({ jsonrpc: '2.0', method: 'nobody.listens', params: {} });
    await wire.call('ping', {});
    expect(heard).toEqual([{ percent: 40, clientId: 'm1' }]);
    expect(errors.map(({ context }) => context)).toEqual(['receiving orchestrate.progress']);
    expect(wire.received.filter((m) => m.error)).toEqual([]);
    stop();
    wire.send({ jsonrpc: '2.0', method: 'orchestrate.progress', params: { percent: 50 } });
    await wire.call('ping', {});
    expect(heard).toHaveLength(1);
  });

  it('refuses a service served twice, a missing handler, and an app option that is not one', () => {
    const { hub } = setup();
    hub.serve(orchestrate, orchestrator().handlers);
    expect(() => hub.serve(orchestrate, orchestrator().handlers)).toThrow(/already served/);
    expect(() => hub.serve(manager, {} as never)).toThrow(/no handler for createPane/);
    expect(() => new Hub({ domains: [], app: { name: 'x', version: '1', accepts: '^1' } })).toThrow(/HubOptions.app: version/);
    expect(() => new Hub({ domains: [], app: { name: 'x', version: '1.0.0', accepts: 'one or two' } })).toThrow(/HubOptions.app: accepts/);
  });
});

describe('hub services: hub → client calls', () => {
  async function withManager(options: Partial<HubOptions> = {}, clientId = 'manager-1') {
    const world = setup(options);
    const wire = await world.greeted({ clientId, services: [{ name: 'manager', version: '1.4.2' }] });
    return { ...world, wire };
  }

  it('sends a request with an integer id to the connection that announced the service, and resolves with the validated answer', async () => {
    const { hub, wire } = await withManager();
    const peer = hub.peer({ clientId: 'manager-1' })!;
    expect(peer.services).toEqual(new Map([['manager', '1.4.2']]));
    expect(peer.serves(manager)).toBe(true);
    const before = wire.received.length;
    const created = hub.call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'npm test' });
    const request = await wire.incoming('manager.createPane', before);
    expect(request).toEqual({ jsonrpc: '2.0', id: 1, method: 'manager.createPane', params: { type: 'terminal', command: 'npm test' } });
    wire.send({ jsonrpc: '2.0', id: 1, result: { paneId: 'pane-7' } });
    await expect(created).resolves.toEqual({ paneId: 'pane-7' });

    const refused = peer.call(manager.createPane, { type: 'terminal', command: 'x' });
    const second = await wire.incoming('manager.createPane', before + 1);
    expect(second.id).toBe(2);
    wire.send({ jsonrpc: '2.0', id: 2, error: { code: ErrorCodes.LIMIT_EXCEEDED, message: 'no room for a pane', data: { limit: 'panes', max: 4 } } });
    await expect(refused).rejects.toMatchObject({ code: 'LIMIT_EXCEEDED', message: 'no room for a pane', data: { limit: 'panes', max: 4 } });

    const bad = peer.call(manager.createPane, { type: 'terminal', command: 'y' });
    await wire.incoming('manager.createPane', before + 2);
    wire.send({ jsonrpc: '2.0', id: 3, result: { pane: 7 } });
    await expect(bad).rejects.toMatchObject({ code: 'INTERNAL_ERROR', data: { reason: 'invalidResult' } });
  });

  it('fails at once, sending nothing, for a service the client did not announce or announced in another major', async () => {
    const { hub, greeted } = setup();
    const plain = await greeted({ clientId: 'plain' });
    const old = await greeted({ clientId: 'old', services: [{ name: 'manager', version: '0.9.0' }] });
    const before = [plain.received.length, old.received.length];
    await expect(hub.call({ clientId: 'plain' }, manager.createPane, { type: 'terminal', command: 'x' })).rejects.toMatchObject({
      code: 'METHOD_NOT_FOUND',
      data: { service: 'manager', reason: 'notServed' },
    });
    await expect(hub.call({ clientId: 'old' }, manager.createPane, { type: 'terminal', command: 'x' })).rejects.toMatchObject({
      code: 'METHOD_NOT_FOUND',
      data: { reason: 'incompatibleVersion', served: '0.9.0', wanted: '1.4.0' },
    });
    await expect(hub.call({ clientId: 'nobody' }, manager.createPane, { type: 'terminal', command: 'x' })).rejects.toMatchObject({
      code: 'UNAVAILABLE',
      data: { reason: 'notConnected' },
    });
    expect(hub.notify({ clientId: 'nobody' }, manager.paneClosed, { paneId: 'p' })).toBe(false);
    expect([plain.received.length, old.received.length]).toEqual(before);
  });

  it('times out with TIMEOUT and tells the client with $/cancelRequest; an abort is CANCELLED, told the same way', async () => {
    const { hub, wire, clock } = await withManager({ callTimeoutMs: 5_000 });
    const before = wire.received.length;
    const timers = clock.pendingTimers;
    const late = hub.call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'x' });
    const outcome = late.catch((error: unknown) => error);
    await wire.incoming('manager.createPane', before);
    await clock.advance(4_999);
    expect(wire.received.slice(before).map((m) => m.method)).toEqual(['manager.createPane']);
    await clock.advance(1);
    expect(await outcome).toMatchObject({ code: 'TIMEOUT', data: { method: 'manager.createPane', timeoutMs: 5_000 } });
    expect(await wire.incoming('$/cancelRequest', before)).toEqual({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: 1 } });
    // The answer that comes after all is ignored.
    wire.send({ jsonrpc: '2.0', id: 1, result: { paneId: 'late' } });

    const controller = new AbortController();
    const aborted = hub
      .call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'y' }, { signal: controller.signal, timeoutMs: 60_000 })
      .catch((error: unknown) => error);
    await wire.incoming('manager.createPane', before + 2);
    controller.abort();
    expect(await aborted).toMatchObject({ code: 'CANCELLED' });
    expect(wire.received.filter((m) => m.method === '$/cancelRequest').map((m) => m.params)).toEqual([{ id: 1 }, { id: 2 }]);
    // No timer left behind by either call.
    expect(clock.pendingTimers).toBe(timers);
  });

  it('fails the calls of a connection that closes with UNAVAILABLE, and tells the service', async () => {
    const closedPeers: string[] = [];
    const world = setup();
    world.hub.serve(orchestrate, orchestrator().handlers, { onPeerClosed: (peer) => closedPeers.push(peer.clientId) });
    const wire = await world.greeted({ clientId: 'manager-1', services: [{ name: 'manager', version: '1.4.0' }] });
    const pending = world.hub.call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'x' }).catch((error: unknown) => error);
    await wire.incoming('manager.createPane');
    wire.link.client.close('manager crashed');
    expect(await pending).toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'connectionClosed' } });
    expect(closedPeers).toEqual(['manager-1']);
    expect(world.hub.peer({ clientId: 'manager-1' })).toBeUndefined();
  });

  it('a malformed answer to a hub call fails that call and is not answered back', async () => {
    const { hub, wire } = await withManager();
    const call = hub.call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'x' }).catch((error: unknown) => error);
    await wire.incoming('manager.createPane');
    const before = wire.received.length;
    wire.send({ jsonrpc: '2.0', id: 1 });
    expect(await call).toMatchObject({ code: 'INTERNAL_ERROR', data: { reason: 'invalidResponse' } });
    await wire.call('ping', {});
    expect(wire.received.slice(before).filter((m) => m.error)).toEqual([]);
  });

  it('tells onPeer listeners of each greeted connection after its hello answer, so they may call it', async () => {
    const { hub, connect, errors } = setup();
    const greetedPeers: string[] = [];
    const stop = hub.onPeer((peer) => {
      greetedPeers.push(peer.clientId);
      if (peer.serves(manager)) void peer.call(manager.createPane, { type: 'terminal', command: 'welcome' }).catch(() => {});
      if (peer.clientId === 'bad') throw new Error('listener bug');
    });
    const wire = connect();
    await wire.hello({ clientId: 'manager-1', services: [{ name: 'manager', version: '1.4.0' }] });
    const request = await wire.incoming('manager.createPane');
    // The hello answer came first, then the hub's call.
    expect(wire.received.indexOf(request)).toBeGreaterThan(wire.received.findIndex((m) => m.id === 1 && m.result));
    await connect().hello({ clientId: 'bad' });
    expect(greetedPeers).toEqual(['manager-1', 'bad']);
    expect(errors.map(({ context }) => context)).toEqual(['a hub.onPeer listener']);
    stop();
    await connect().hello({ clientId: 'later' });
    expect(greetedPeers).toHaveLength(2);
  });

  it('picks the most recently opened connection of a client id, and notifies it', async () => {
    const { hub, greeted } = setup();
    const first = await greeted({ clientId: 'manager-1', services: [{ name: 'manager', version: '1.4.0' }] });
    const second = await greeted({ clientId: 'manager-1', services: [{ name: 'manager', version: '1.4.0' }] });
    const peer = hub.peer({ clientId: 'manager-1' })!;
    expect(hub.peer({ sessionId: peer.sessionId })).toBe(peer);
    expect(hub.peers().map((p) => p.clientId)).toEqual(['manager-1', 'manager-1']);
    expect(hub.notify({ clientId: 'manager-1' }, manager.paneClosed, { paneId: 'pane-7' })).toBe(true);
    expect(await second.incoming('manager.paneClosed')).toEqual({ jsonrpc: '2.0', method: 'manager.paneClosed', params: { paneId: 'pane-7' } });
    expect(first.received.some((m) => m.method === 'manager.paneClosed')).toBe(false);
  });

  it('gives handlers the peer, to call the client back during a call', async () => {
    const { hub, greeted } = setup();
    hub.serve(orchestrate, {
      ...orchestrator().handlers,
      route: async ({ command }, { peer }) => {
        const { paneId } = await peer.call(manager.createPane, { type: 'terminal', command });
        return { agent: `in ${paneId}` };
      },
    });
    const wire = await greeted({ services: [{ name: 'manager', version: '1.4.0' }] });
    const id = wire.sendRequest('orchestrate.route', { command: 'npm test' });
    const asked = await wire.incoming('manager.createPane');
    wire.send({ jsonrpc: '2.0', id: asked.id, result: { paneId: 'pane-3' } });
    expect((await wire.response(id)).result).toEqual({ agent: 'in pane-3' });
  });

  it('re-checks served resources on reauthorize, closes services first on hub.close', async () => {
    const events: string[] = [];
    const world = setup({ authorize: () => true });
    world.hub.serve(orchestrate, orchestrator().handlers, {
      onReauthorize: (peer: Peer) => void events.push(`reauthorize ${peer.clientId}`),
      close: () => void events.push('close'),
    });
    const wire = await world.greeted({ clientId: 'c1' });
    await wire.call('orchestrate.route', { command: 'x' });
    await world.hub.reauthorize((identity: Identity | undefined) => identity === undefined);
    expect(events).toEqual(['reauthorize c1']);
    await world.hub.close();
    expect(events).toEqual(['reauthorize c1', 'close']);
  });
});

describe('hub app versions', () => {
  const app = { name: 'orchflow', version: '2.1.3', accepts: '^2.0.0' };

  it.each([
    ['no app', undefined, true],
    ['another app', { name: 'other', version: '2.0.0' }, true],
    ['a version out of range', { name: 'orchflow', version: '1.9.0' }, true],
    ['a version in range', { name: 'orchflow', version: '2.5.0' }, false],
  ] as const)('hello with %s', async (_, peerApp, refused) => {
    const { connect, hub } = setup({ app });
    const wire = connect();
    const answer = await wire.call('hello', peerApp === undefined ? { protocol: 1 } : { protocol: 1, app: peerApp });
    if (!refused) {
      expect(answer.result.app).toEqual({ name: 'orchflow', version: '2.1.3' });
      expect(hub.peers()[0]!.app).toEqual(peerApp);
      return;
    }
    expect(answer.error).toEqual({
      code: ErrorCodes.INCOMPATIBLE_APP,
      message: expect.stringContaining('this hub accepts orchflow ^2.0.0 clients'),
      data: { app, peer: peerApp ?? null },
    });
    // Not greeted: hello may be said again, with an app the hub takes.
    expect((await wire.call('orchestrate.route', {})).error?.code).toBe(ErrorCodes.METHOD_NOT_FOUND);
    expect((await wire.call('hello', { protocol: 1, app: { name: 'orchflow', version: '2.0.0' } })).result).toBeDefined();
  });

  it('serves implementations given at construction, and says nothing of apps it does not name', async () => {
    const { greeted } = setup({ services: [implement(orchestrate, orchestrator().handlers)] });
    const wire = await greeted({ app: { name: 'anything', version: '0.0.1' } });
    expect(wire.received[0]!.result).not.toHaveProperty('app');
    expect((await wire.call('orchestrate.route', { command: 'x' })).result).toEqual({ agent: 'agent-for-x' });
  });
});

import { createClient, type ClientOptions, type LockstepClient } from '@lockstep/client';
import { LockstepError, createMemoryLink, createRandom, defineService, method, notification, type MemoryLink } from '@lockstep/core';
import { Hub, type HubOptions, type ServiceContext } from '@lockstep/server';
import { FakeClock } from '@lockstep/testkit';
import { describe, expect, expectTypeOf, it } from 'vitest';
import * as z from 'zod';

/**
 * Services between the `@lockstep/client` client and a hub, both ways, with the lifecycle written in
 * docs/rpc.md: what a call gets when the connection drops, reconnects, times out or is cancelled.
 * The hub and the client share a fake clock, so timeouts are reached by advancing it.
 */

const orchestrate = defineService('orchestrate', '1.2.0', {
  route: method({ params: z.object({ command: z.string().min(1) }), result: z.object({ agent: z.string() }) }),
  status: method({ params: z.object({ verbose: z.boolean() }).optional(), result: z.object({ busy: z.boolean() }), idempotent: true }),
  /** Answers once the test releases `key`. */
  hold: method({ params: z.object({ key: z.string() }), result: z.object({ key: z.string() }) }),
  holdIdempotent: method({ params: z.object({ key: z.string() }), result: z.object({ key: z.string() }), idempotent: true }),
  progress: notification({ params: z.object({ percent: z.number().min(0).max(100) }) }),
});

const manager = defineService('manager', '1.4.0', {
  createPane: method({ params: z.object({ type: z.literal('terminal'), command: z.string() }), result: z.object({ paneId: z.string() }) }),
  /** Answers once the test releases it (or never). */
  slow: method({ params: z.object({}), result: z.object({}) }),
  fail: method({ params: z.object({ bug: z.boolean() }), result: z.object({}) }),
  focus: notification({ params: z.object({ paneId: z.string() }) }),
});

interface Held {
  callId: string | number;
  signal: AbortSignal;
  release(): void;
}

function rpcWorld(options: { hub?: Partial<HubOptions>; client?: Partial<ClientOptions>; serveManager?: boolean } = {}) {
  const clock = new FakeClock();
  const hubErrors: Array<{ error: unknown; context: string }> = [];
  const clientErrors: unknown[] = [];
  const hub = new Hub({ domains: [], clock, onError: (error, context) => hubErrors.push({ error, context }), ...options.hub });
  /** Held calls on the hub, by key (several per key when a call is re-sent). */
  const held = new Map<string, Held[]>();
  const hold = ({ key }: { key: string }, { callId, signal }: ServiceContext) =>
    new Promise<{ key: string }>((resolve, reject) => {
      const list = held.get(key) ?? [];
      held.set(key, list);
      list.push({ callId, signal, release: () => resolve({ key }) });
      signal.addEventListener('abort', () => reject(signal.reason as Error));
    });
  hub.serve(orchestrate, {
    route: ({ command }) => ({ agent: `agent-for-${command}` }),
    status: (params) => ({ busy: params?.verbose === true }),
    hold,
    holdIdempotent: hold,
  });
  const links: MemoryLink[] = [];
  /** Every message the client sent the hub, batches flattened. */
  const toHub: any[] = [];
  const client = createClient({
    clock,
    clientId: 'manager-1',
    random: createRandom(7),
    backoff: { initialMs: 10, maxMs: 10 },
    onError: (error) => clientErrors.push(error),
    connect: () => {
      const link = createMemoryLink({ clock });
      link.server.frames.subscribe((frame) => {
        const decoded = JSON.parse(frame as string);
        toHub.push(...(Array.isArray(decoded) ? decoded : [decoded]));
      });
      hub.accept(link.server);
      links.push(link);
      return link.client;
    },
    ...options.client,
  });
  const clientSignals: AbortSignal[] = [];
  let releaseSlow: (() => void) | undefined;
  if (options.serveManager !== false) {
    client.serve(manager, {
      createPane: ({ command }, { callId }) => ({ paneId: `pane-${callId}-${command}` }),
      slow: (_params, { signal }) =>
        new Promise((resolve) => {
          clientSignals.push(signal as AbortSignal);
          releaseSlow = () => resolve({});
        }),
      fail: ({ bug }) => {
        if (bug) throw new Error('a bug in the manager');
        throw new LockstepError('LIMIT_EXCEEDED', 'no room for a pane', { limit: 'panes', max: 4 });
      },
    });
  }
  const online = () => clock.advanceUntil(() => client.status.status === 'online');
  const heldCall = async (key: string, index = 0): Promise<Held> => {
    await clock.advanceUntil(() => (held.get(key)?.length ?? 0) > index);
    return held.get(key)![index]!;
  };
  const settle = async <T>(promise: Promise<T>): Promise<T | LockstepError> => {
    const outcome = promise.then(
      (value) => value,
      (error: LockstepError) => error,
    );
    let done = false;
    void outcome.finally(() => (done = true));
    await clock.advanceUntil(() => done);
    return outcome;
  };
  return { clock, hub, client, links, toHub, hubErrors, clientErrors, clientSignals, online, heldCall, settle, releaseSlow: () => releaseSlow?.() };
}

const appCalls = (messages: any[]) => messages.filter((message) => typeof message.method === 'string' && message.method.includes('.'));

describe('services between client and hub', () => {
  it('calls typed methods both ways, with notifications both ways, announced in hello', async () => {
    const w = rpcWorld();
    await w.online();
    const hello = w.toHub.find((message) => message.method === 'hello');
    expect(hello.params.services).toEqual([{ name: 'manager', version: '1.4.0' }]);
    expect(w.client.supports(orchestrate)).toBe(true);
    expect(w.client.supports(manager)).toBe(false);
    expect(w.client.serverInfo?.services).toEqual([{ name: 'orchestrate', version: '1.2.0' }]);

    const routed = await w.client.call(orchestrate.route, { command: 'run tests' });
    expectTypeOf(routed).toEqualTypeOf<{ agent: string }>();
    expect(routed).toEqual({ agent: 'agent-for-run tests' });
    // Params the schema takes as undefined may be left out.
    expect(await w.client.call(orchestrate.status)).toEqual({ busy: false });
    expect(await w.client.call(orchestrate.status, { verbose: true })).toEqual({ busy: true });
    // @ts-expect-error: params are required and typed
    await expect(w.client.call(orchestrate.route)).rejects.toMatchObject({ code: 'INVALID_PARAMS' });
    // @ts-expect-error: a number is not a command
    await expect(w.client.call(orchestrate.route, { command: 42 })).rejects.toMatchObject({ code: 'INVALID_PARAMS' });

    const pane = await w.hub.call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'npm test' });
    expectTypeOf(pane).toEqualTypeOf<{ paneId: string }>();
    expect(pane).toEqual({ paneId: 'pane-1-npm test' });

    const focused: string[] = [];
    w.client.on(manager.focus, ({ paneId }) => focused.push(paneId));
    expect(w.hub.notify({ clientId: 'manager-1' }, manager.focus, { paneId: 'pane-1' })).toBe(true);
    const progress: number[] = [];
    w.hub.on(orchestrate.progress, ({ percent }, { clientId }) => progress.push(clientId === 'manager-1' ? percent : -1));
    expect(w.client.notify(orchestrate.progress, { percent: 40 })).toBe(true);
    await w.clock.advanceUntil(() => focused.length === 1 && progress.length === 1);
    expect(focused).toEqual(['pane-1']);
    expect(progress).toEqual([40]);
    expect([w.hubErrors, w.clientErrors]).toEqual([[], []]);
    w.client.close();
  });

  it('fails at once, sending nothing, for a service the hub does not serve or serves in another version', async () => {
    const w = rpcWorld();
    await w.online();
    const sent = w.toHub.length;
    const other = defineService('other', '1.0.0', { x: method({ params: z.object({}), result: z.object({}) }) });
    await expect(w.client.call(other.x, {})).rejects.toMatchObject({ code: 'METHOD_NOT_FOUND', data: { service: 'other', reason: 'notServed' } });
    const newer = defineService('orchestrate', '2.0.0', {
      route: method({ params: z.object({ command: z.string() }), result: z.object({ agent: z.string() }) }),
    });
    await expect(w.client.call(newer.route, { command: 'x' })).rejects.toMatchObject({
      code: 'METHOD_NOT_FOUND',
      data: { reason: 'incompatibleVersion', served: '1.2.0', wanted: '2.0.0' },
    });
    expect(w.toHub.length).toBe(sent);
    w.client.close();
  });

  it('answers the hub’s calls with the client handler’s errors; a bug is INTERNAL_ERROR, reported to onError', async () => {
    const w = rpcWorld();
    await w.online();
    const target = { clientId: 'manager-1' };
    expect(await w.settle(w.hub.call(target, manager.fail, { bug: false }))).toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: 'no room for a pane',
      data: { limit: 'panes', max: 4 },
    });
    expect(await w.settle(w.hub.call(target, manager.fail, { bug: true }))).toMatchObject({ code: 'INTERNAL_ERROR', message: 'internal error' });
    expect(w.clientErrors).toEqual([new Error('a bug in the manager')]);
    // The client validates what it is sent.
    expect(await w.settle(w.hub.call(target, manager.createPane, { type: 'window' } as never))).toMatchObject({ code: 'INVALID_PARAMS' });
    w.client.close();
  });
});

describe('lifecycle of a call (docs/rpc.md)', () => {
  it('a call in flight when the connection drops fails with UNAVAILABLE (connectionLost), never hangs', async () => {
    const w = rpcWorld({ client: { backoff: { initialMs: 1_000, maxMs: 1_000, jitter: 0 } } });
    await w.online();
    const call = w.settle(w.client.call(orchestrate.hold, { key: 'a' }));
    await w.heldCall('a');
    w.links.at(-1)!.disconnect('network down');
    expect(await call).toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'connectionLost' } });
    // While offline, a call fails at once: it is not queued.
    expect(w.client.status.status).toBe('offline');
    await expect(w.client.call(orchestrate.route, { command: 'x' })).rejects.toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'notConnected' } });
    await w.online();
    expect(await w.client.call(orchestrate.route, { command: 'x' })).toEqual({ agent: 'agent-for-x' });
    w.client.close();
  });

  it('an idempotent call in flight is re-sent after the reconnect with the same call id, and answered', async () => {
    const w = rpcWorld();
    await w.online();
    const call = w.settle(w.client.call(orchestrate.holdIdempotent, { key: 'b' }));
    const first = await w.heldCall('b');
    w.links.at(-1)!.disconnect('network down');
    await w.clock.advanceUntil(() => first.signal.aborted);
    const second = await w.heldCall('b', 1);
    expect(second.callId).toBe(first.callId);
    expect(typeof first.callId).toBe('string');
    second.release();
    expect(await call).toEqual({ key: 'b' });
    expect(w.links).toHaveLength(2);
    w.client.close();
  });

  it('times out with TIMEOUT, and the hub’s handler is cancelled; an abort is CANCELLED at once, cancelled the same way', async () => {
    const w = rpcWorld();
    await w.online();
    const timedOut = w.settle(w.client.call(orchestrate.hold, { key: 'c' }, { timeoutMs: 1_000 }));
    const handler = await w.heldCall('c');
    expect(await timedOut).toMatchObject({ code: 'TIMEOUT', data: { method: 'orchestrate.hold', timeoutMs: 1_000 } });
    await w.clock.advanceUntil(() => handler.signal.aborted);
    expect(w.toHub.filter((message) => message.method === '$/cancelRequest')).toEqual([
      { jsonrpc: '2.0', method: '$/cancelRequest', params: { id: handler.callId } },
    ]);

    const controller = new AbortController();
    const aborted = w.client.call(orchestrate.hold, { key: 'd' }, { signal: controller.signal });
    const other = await w.heldCall('d');
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'CANCELLED' });
    await w.clock.advanceUntil(() => other.signal.aborted);
    // An already aborted signal sends nothing.
    const sent = appCalls(w.toHub).length;
    await expect(w.client.call(orchestrate.route, { command: 'x' }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(appCalls(w.toHub).length).toBe(sent);
    w.client.close();
  });

  it('closing the client fails its calls in flight with UNAVAILABLE (closed)', async () => {
    const w = rpcWorld();
    await w.online();
    const call = w.settle(w.client.call(orchestrate.holdIdempotent, { key: 'e' }));
    await w.heldCall('e');
    w.client.close();
    expect(await call).toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'closed' } });
    await expect(w.client.call(orchestrate.route, { command: 'x' })).rejects.toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'closed' } });
  });

  it('a hub → client call fails with UNAVAILABLE when the client’s connection drops; the client’s handler is aborted', async () => {
    const w = rpcWorld();
    await w.online();
    const call = w.settle(w.hub.call({ clientId: 'manager-1' }, manager.slow, {}));
    await w.clock.advanceUntil(() => w.clientSignals.length === 1);
    w.links.at(-1)!.disconnect('network down');
    expect(await call).toMatchObject({ code: 'UNAVAILABLE', data: { reason: 'connectionClosed' } });
    expect(w.clientSignals[0]!.aborted).toBe(true);
    w.client.close();
  });

  it('a hub → client call that times out cancels the client’s handler', async () => {
    const w = rpcWorld({ hub: { callTimeoutMs: 2_000 } });
    await w.online();
    const call = w.settle(w.hub.call({ clientId: 'manager-1' }, manager.slow, {}));
    await w.clock.advanceUntil(() => w.clientSignals.length === 1);
    expect(await call).toMatchObject({ code: 'TIMEOUT' });
    await w.clock.advanceUntil(() => w.clientSignals[0]!.aborted);
    // Its late answer is ignored by the hub.
    w.releaseSlow();
    await w.clock.flush();
    expect(w.hubErrors).toEqual([]);
    w.client.close();
  });

  it('a service served after the hello is announced at the next connection', async () => {
    const w = rpcWorld({ serveManager: false });
    await w.online();
    const stop = w.client.serve(manager, { createPane: () => ({ paneId: 'p' }), slow: () => ({}), fail: () => ({}) });
    expect(await w.settle(w.hub.call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'x' }))).toMatchObject({
      code: 'METHOD_NOT_FOUND',
    });
    w.links.at(-1)!.disconnect('reconnect to announce');
    await w.clock.advanceUntil(() => w.links.length === 2 && w.client.status.status === 'online');
    expect(await w.hub.call({ clientId: 'manager-1' }, manager.createPane, { type: 'terminal', command: 'x' })).toEqual({ paneId: 'p' });
    stop();
    expect(() => w.client.serve(manager, {} as never)).toThrow(/no handler/);
    w.client.close();
  });
});

describe('application versions at hello', () => {
  async function refusal(client: LockstepClient, clock: FakeClock): Promise<unknown> {
    await clock.advanceUntil(() => client.status.lastError !== undefined);
    return client.status.lastError;
  }

  it('a hub refuses a client app outside its range with INCOMPATIBLE_APP, both versions in data', async () => {
    const w = rpcWorld({ hub: { app: { name: 'orchflow', version: '2.1.3', accepts: '^2.0.0' } }, client: { app: { name: 'orchflow', version: '1.9.0' } } });
    const error = await refusal(w.client, w.clock);
    expect(error).toBeInstanceOf(LockstepError);
    expect(error).toMatchObject({
      code: 'INCOMPATIBLE_APP',
      data: { app: { name: 'orchflow', version: '2.1.3', accepts: '^2.0.0' }, peer: { name: 'orchflow', version: '1.9.0' } },
    });
    expect(w.client.status.status).toBe('offline');
    w.client.close();
  });

  it('a client refuses a hub app outside its range the same way, and connects to one inside it', async () => {
    const w = rpcWorld({
      hub: { app: { name: 'orchflow', version: '3.0.0' } },
      client: { app: { name: 'orchflow', version: '2.0.0', accepts: '>=2.1.0 <3.0.0' } },
    });
    expect(await refusal(w.client, w.clock)).toMatchObject({
      code: 'INCOMPATIBLE_APP',
      data: { app: { name: 'orchflow', version: '2.0.0', accepts: '>=2.1.0 <3.0.0' }, peer: { name: 'orchflow', version: '3.0.0' } },
    });
    w.client.close();
    const fits = rpcWorld({
      hub: { app: { name: 'orchflow', version: '2.4.1' } },
      client: { app: { name: 'orchflow', version: '2.0.0', accepts: '>=2.1.0 <3.0.0' } },
    });
    await fits.online();
    expect(fits.client.serverInfo?.app).toEqual({ name: 'orchflow', version: '2.4.1' });
    fits.client.close();
    expect(() => createClient({ connect: () => createMemoryLink().client, app: { name: 'x', version: '1.0.0', accepts: 'not a range' } })).toThrow(
      /ClientOptions.app/,
    );
  });
});

import { createClient, type LockstepClient } from '@lockstep/client';
import { focusDomain, tasksDomain } from '@lockstep/core';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { fixtures, isRunning, killStarted, tsArgs } from '../test/processes.js';
import { createSidecar, type Sidecar, type SidecarEvent, type SidecarOptions } from './sidecar.js';
import { SidecarUnavailableError } from './SidecarUnavailableError.js';

/** The sidecars of the running test, and every pid they spawned. */
const sidecars = new Set<Sidecar>();
const spawnedPids = new Set<number>();

// Each test closes its sidecars; then no child they ever spawned may still exist.
afterEach(async () => {
  await Promise.all([...sidecars].map((sidecar) => sidecar.close()));
  sidecars.clear();
  const survivors = [...spawnedPids].filter(isRunning);
  spawnedPids.clear();
  for (const pid of survivors) process.kill(pid, 'SIGKILL');
  expect(survivors, 'sidecar children that outlived their test').toEqual([]);
});
afterEach(killStarted);

interface Harness {
  sidecar: Sidecar;
  events: SidecarEvent[];
  stderr: () => string;
  /** The next event of this type (or the one already seen since `from`). */
  next<T extends SidecarEvent['type']>(type: T, from?: number): Promise<Extract<SidecarEvent, { type: T }>>;
}

function startSidecar(options: Partial<SidecarOptions> & Pick<SidecarOptions, 'args'>): Harness {
  let stderr = '';
  const sidecar = createSidecar({
    command: process.execPath,
    restart: { initialMs: 50, maxMs: 400 },
    pingIntervalMs: 200,
    killGraceMs: 1_000,
    stderr: (text) => (stderr += text),
    ...options,
  });
  const events: SidecarEvent[] = [];
  const subject = sidecar.events;
  subject.subscribe((event) => {
    events.push(event);
    if (event.type === 'spawned') spawnedPids.add(event.pid);
  });
  sidecars.add(sidecar);
  return {
    sidecar,
    events,
    stderr: () => stderr,
    next<T extends SidecarEvent['type']>(type: T, from = events.length) {
      const seen = events.slice(from).find((event) => event.type === type);
      if (seen) return Promise.resolve(seen as Extract<SidecarEvent, { type: T }>);
      return firstValueFrom(subject.pipe(filter((event): event is Extract<SidecarEvent, { type: T }> => event.type === type)));
    },
  };
}

function clientOf(sidecar: Sidecar): LockstepClient {
  const client = createClient({ connect: sidecar.connect, clientId: 'host', backoff: { initialMs: 20, maxMs: 200 }, requestTimeoutMs: 5_000 });
  onTestFinished(() => client.close());
  return client;
}

/** The `STATE` lines the hub child writes to stderr on its way out. */
function dumpedStates(stderr: string): Map<string, { version: number; state: unknown }> {
  const states = new Map<string, { version: number; state: unknown }>();
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('STATE ')) continue;
    const { stream, version, state } = JSON.parse(line.slice(6)) as { stream: string; version: number; state: unknown };
    states.set(stream, { version, state });
  }
  return states;
}

describe('sidecar', () => {
  it('negotiates through the client’s hello: serverId, epoch, capabilities, domains', async () => {
    const { sidecar, next } = startSidecar({ args: tsArgs(fixtures.hubChild) });
    const client = clientOf(sidecar);
    const info = await sidecar.negotiate();
    expect(info).toMatchObject({ protocol: 1, domains: expect.arrayContaining(['tasks', 'focus', 'orchestration']) });
    expect(typeof info.serverId).toBe('string');
    expect(typeof info.epoch).toBe('string');
    expect(info.capabilities).toMatchObject({ codecs: expect.arrayContaining(['json']) });
    expect(info.pid).toBe(sidecar.pid);
    expect((await next('negotiated', 0)).info).toEqual(info);
    await client.whenIdle();
    expect(client.status.serverId).toBe(info.serverId);
  });

  it('restarts a SIGKILLed child with backoff; the client resyncs to exactly the new hub’s state', async () => {
    const { sidecar, events, next, stderr } = startSidecar({ args: tsArgs(fixtures.hubChild), env: { ...process.env, LOCKSTEP_FIXTURE_DUMP: '1' } });
    const client = clientOf(sidecar);
    const tasks = client.stream(tasksDomain, 'p1');
    const focus = client.stream(focusDomain, 'p1');
    await tasks.dispatch({ type: 'task.create', payload: { id: 'old-1', title: 'before the crash' } });
    await tasks.dispatch({ type: 'task.create', payload: { id: 'old-2', title: 'also before' } });
    await focus.dispatch({ type: 'focus.set', payload: { sessionId: 'terminal-1' } });
    const first = await sidecar.negotiate();
    expect(tasks.confirmed.version).toBe(2);

    const mark = events.length;
    process.kill(first.pid, 'SIGKILL');
    // Sent while the child is down: pending, then sent to the new child exactly once.
    const during = tasks.dispatch({ type: 'task.create', payload: { id: 'during', title: 'while it was down' } });

    const exited = await next('exited', mark);
    expect(exited).toMatchObject({ pid: first.pid, signal: 'SIGKILL', code: null, expected: false });
    const restarting = await next('restarting', mark);
    expect(restarting).toMatchObject({ delayMs: 50, restart: 1 });
    const respawned = await next('spawned', mark);
    expect(respawned.pid).not.toBe(first.pid);
    const renegotiated = await next('negotiated', mark);
    expect(renegotiated.info.epoch).not.toBe(first.epoch);
    expect(renegotiated.info.serverId).not.toBe(first.serverId);

    await during;
    await tasks.dispatch({ type: 'task.update', payload: { id: 'during', status: 'in_progress' } });
    await client.whenIdle();
    expect(isRunning(first.pid)).toBe(false);

    // The memory hub came back empty under a new epoch: the client reset and holds nothing stale.
    expect(Object.keys(tasks.confirmed.state.tasks)).toEqual(['during']);
    expect(tasks.confirmed.version).toBe(2);
    expect(tasks.getSnapshot()).toEqual(tasks.confirmed.state);
    expect(focus.confirmed).toEqual({ state: focusDomain.initialState(), version: 0 });

    // And it is exactly what the new hub holds, as the hub itself reports on its way out.
    const newPid = respawned.pid;
    const out = events.length;
    client.close();
    const gone = await next('exited', out);
    expect(gone).toMatchObject({ pid: newPid, expected: true, code: 0 });
    const hubStates = dumpedStates(stderr());
    expect(hubStates.get('tasks/p1')).toEqual({ version: tasks.confirmed.version, state: tasks.confirmed.state });
    expect(hubStates.get('focus/p1') ?? { version: 0, state: focusDomain.initialState() }).toEqual(focus.confirmed);
    // An expected exit is not restarted.
    expect(events.slice(out).some((event) => event.type === 'restarting')).toBe(false);
  });

  it('gives each connection a fresh child: a client that reconnects retires the old one without a restart', async () => {
    const { sidecar, events, next } = startSidecar({ args: tsArgs(fixtures.hubChild) });
    const client = clientOf(sidecar);
    await client.whenIdle();
    const first = await sidecar.negotiate();
    const mark = events.length;
    client.disconnect('testing a reconnect');
    expect(await next('exited', mark)).toMatchObject({ pid: first.pid, expected: true });
    const second = await next('negotiated', mark);
    expect(second.info.pid).not.toBe(first.pid);
    expect(events.slice(mark).map((event) => event.type)).not.toContain('restarting');
    await client.whenIdle();
  });

  it('restarts with backoff a hub that shut itself down (not an exit the host asked for)', async () => {
    const { sidecar, events, next } = startSidecar({ args: tsArgs(fixtures.hubChild) });
    const client = clientOf(sidecar);
    await client.whenIdle();
    const first = await sidecar.negotiate();
    const mark = events.length;
    process.kill(first.pid, 'SIGUSR2');
    expect(await next('exited', mark)).toMatchObject({ pid: first.pid, code: 0, expected: false });
    expect(await next('restarting', mark)).toMatchObject({ restart: 1 });
    expect((await next('negotiated', mark)).info.pid).not.toBe(first.pid);
    await client.whenIdle();
  });

  it('kills and restarts a child that stops answering health pings', async () => {
    const { sidecar, events, next } = startSidecar({ args: tsArgs(fixtures.hubChild), pingIntervalMs: 100, pingTimeoutMs: 300, killGraceMs: 200 });
    const client = clientOf(sidecar);
    const tasks = client.stream(tasksDomain, 'health');
    await tasks.dispatch({ type: 'task.create', payload: { title: 'before the hang' } });
    const first = await sidecar.negotiate();
    const mark = events.length;
    // A stopped process is alive but answers nothing; only SIGKILL (after the grace) ends it.
    process.kill(first.pid, 'SIGSTOP');
    expect(await next('unhealthy', mark)).toMatchObject({ pid: first.pid, reason: expect.stringMatching(/no answer to a health ping/) });
    expect(await next('exited', mark)).toMatchObject({ pid: first.pid, signal: 'SIGKILL', expected: false });
    expect(await next('restarting', mark)).toMatchObject({ restart: 1 });
    const again = await next('negotiated', mark);
    expect(again.info.pid).not.toBe(first.pid);
    await tasks.dispatch({ type: 'task.create', payload: { title: 'after the restart' } });
    expect(Object.values(tasks.confirmed.state.tasks).map((task) => task.title)).toEqual(['after the restart']);
  });

  it('gives up after maxRestarts consecutive crashes: unavailable, reason gave-up', async () => {
    const { sidecar, events, next } = startSidecar({ args: ['-e', 'process.exit(3)'], restart: { initialMs: 10, maxMs: 40, maxRestarts: 2 } });
    const negotiation = sidecar.negotiate();
    const unavailable = await next('unavailable', 0);
    expect(unavailable.error).toBeInstanceOf(SidecarUnavailableError);
    expect(unavailable.error.reason).toBe('gave-up');
    expect(unavailable.error.message).toMatch(/exited with code 3/);
    await expect(negotiation).rejects.toBe(unavailable.error);
    await expect(sidecar.connect()).rejects.toBe(unavailable.error);
    expect(events.map((event) => event.type)).toEqual([
      'spawned',
      'exited',
      'restarting',
      'spawned',
      'exited',
      'restarting',
      'spawned',
      'exited',
      'unavailable',
    ]);
    expect(events.filter((event) => event.type === 'restarting').map((event) => (event as { delayMs: number }).delayMs)).toEqual([10, 20]);
  });

  it('reports a missing executable as SidecarUnavailableError (not-found), to the client too', async () => {
    const { sidecar, next } = startSidecar({ command: '/nonexistent/lockstep-sidecar', args: [] });
    const connecting = sidecar.connect();
    await expect(connecting).rejects.toBeInstanceOf(SidecarUnavailableError);
    await expect(connecting).rejects.toMatchObject({ reason: 'not-found', message: expect.stringMatching(/ENOENT/) });
    expect((await next('unavailable', 0)).error.reason).toBe('not-found');
    await expect(sidecar.negotiate()).rejects.toMatchObject({ reason: 'not-found' });

    const client = clientOf(sidecar);
    const offline = await firstValueFrom(client.status$.pipe(filter((status) => status.status === 'offline')));
    expect(offline.lastError).toBeInstanceOf(SidecarUnavailableError);
  });

  it('refuses a child that answers hello with UNSUPPORTED_PROTOCOL, and ends it', async () => {
    const { sidecar, next } = startSidecar({ args: tsArgs(fixtures.refusingChild) });
    const client = clientOf(sidecar);
    const refusal = sidecar.negotiate();
    await expect(refusal).rejects.toBeInstanceOf(SidecarUnavailableError);
    await expect(refusal).rejects.toMatchObject({ reason: 'unsupported-protocol', data: { supported: [2] } });
    const spawned = await next('spawned', 0);
    const exited = await next('exited', 0);
    expect(exited).toMatchObject({ pid: spawned.pid, expected: true });
    expect(isRunning(spawned.pid)).toBe(false);
    await expect(sidecar.connect()).rejects.toMatchObject({ reason: 'unsupported-protocol' });
    const offline = await firstValueFrom(client.status$.pipe(filter((status) => status.status === 'offline' && status.attempt > 0)));
    expect(offline.lastError).toBeInstanceOf(SidecarUnavailableError);
  });

  it('close() leaves no process behind, even a child that ignores SIGTERM', async () => {
    const { sidecar, next } = startSidecar({
      args: ['-e', "process.on('SIGTERM', () => {}); process.stdin.resume(); setInterval(() => {}, 1000)"],
      pingIntervalMs: 0,
      killGraceMs: 200,
    });
    // It resolves, or rejects once closed: either way, the test is about the process.
    const connecting = sidecar.connect().catch((error: unknown) => error);
    const { pid } = await next('spawned', 0);
    expect(isRunning(pid)).toBe(true);
    await sidecar.close();
    await connecting;
    expect(isRunning(pid)).toBe(false);
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
    await expect(sidecar.connect()).rejects.toMatchObject({ reason: 'closed' });
  });

  it('close() during a restart backoff cancels the restart', async () => {
    const { sidecar, events, next } = startSidecar({ args: tsArgs(fixtures.hubChild), restart: { initialMs: 60_000 } });
    const client = clientOf(sidecar);
    await client.whenIdle();
    const { pid } = await sidecar.negotiate();
    process.kill(pid, 'SIGKILL');
    await next('restarting', 0);
    await sidecar.close();
    expect(events.at(-1)).toEqual({ type: 'closed' });
    expect(events.filter((event) => event.type === 'spawned')).toHaveLength(1);
  });
});

import { ErrorCodes, type OrchestrationState } from '@lockstep/core';
import { Hub, type Identity } from '@lockstep/server';
import { FakeClock } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';
import { MemoryWire } from './memoryWire.js';
import { ATTACK_DOMAINS, TRANSPORT_KINDS, bystanders, collect, expectUnharmed, startWorld, type Peer } from './world.js';

/**
 * Well-formed messages used against the protocol: requests before hello, a borrowed client id,
 * absurd versions, a huge resync, a thousand subscriptions, a command id reused for another payload.
 */

const add = (id: string, stream = 'counter/x', by = 1) => ({ id, stream, type: 'add', payload: { by } });

describe.each(TRANSPORT_KINDS)('protocol misuse over %s', (kind) => {
  it('requests before hello are HANDSHAKE_REQUIRED (unknown methods METHOD_NOT_FOUND); ping is answered; nothing changes', async () => {
    const world = await startWorld();
    const others = await bystanders(world);
    const attacker = await world.connect(kind);
    const before = await world.targets();
    expect((await attacker.call('subscribe', { stream: 'counter/x' })).error.code).toBe(ErrorCodes.HANDSHAKE_REQUIRED);
    expect((await attacker.call('unsubscribe', { stream: 'counter/x' })).error.code).toBe(ErrorCodes.HANDSHAKE_REQUIRED);
    expect((await attacker.call('command', add('early-1'))).error.code).toBe(ErrorCodes.HANDSHAKE_REQUIRED);
    expect((await attacker.call('terminal.attach', { terminalId: 'x' })).error.code).toBe(ErrorCodes.METHOD_NOT_FOUND);
    expect((await attacker.call('ping')).result).toEqual({ time: expect.any(Number) });
    // A command sent before hello was not remembered either: after hello the same id runs once.
    await attacker.call('hello', { protocol: 1, clientId: 'late' });
    expect((await attacker.call('command', add('early-1', 'counter/late'))).result).toEqual({ id: 'early-1', stream: 'counter/late', version: 1 });
    await expectUnharmed(world, before, others);
  });

  it('a borrowed client id is refused: another identity cannot say hello as it, nor act as its lease holder', async () => {
    const users: Record<string, Identity> = { alice: { id: 'alice' }, mallory: { id: 'mallory' } };
    const world = await startWorld({
      hub: {
        leaseGraceMs: 100,
        authenticate: ({ token }) => users[token ?? ''],
        authorize: (identity, stream) => identity?.id === 'alice' || stream.startsWith('counter/mallory'),
      },
    });
    const victim = await world.connect(kind, { clientId: 'ide-1', token: 'alice' });
    await victim.call('subscribe', { stream: 'orchestration/default' });
    const leased = await victim.call('command', {
      id: 'ide-1:1',
      stream: 'orchestration/default',
      type: 'workspace.setDesired',
      payload: { workspaceId: 'w1', desired: 2, lease: true },
    });
    expect(leased.result).toMatchObject({ version: 1 });
    const before = await world.targets();

    // The owner's client id from another identity: refused, and the connection stays unauthenticated.
    const spoofer = await world.connect(kind);
    const refused = await spoofer.call('hello', { protocol: 1, clientId: 'ide-1', token: 'mallory' });
    expect(refused.error).toMatchObject({ code: ErrorCodes.FORBIDDEN, data: { clientId: 'ide-1' } });
    const early = await spoofer.call('command', { id: 'forged-0', stream: 'counter/mallory', type: 'add', payload: { by: 1 } });
    expect(early.error.code).toBe(ErrorCodes.HANDSHAKE_REQUIRED);
    // As itself it is served, with its own rights only.
    expect((await spoofer.call('hello', { protocol: 1, clientId: 'mallory-1', token: 'mallory' })).result).toBeDefined();
    expect((await spoofer.call('subscribe', { stream: 'orchestration/default' })).error).toMatchObject({ code: ErrorCodes.FORBIDDEN });
    const forged = await spoofer.call('command', {
      id: 'forged-1',
      stream: 'orchestration/default',
      type: 'workspace.expireLease',
      payload: { workspaceId: 'w1', holder: 'ide-1' },
    });
    expect(forged.error).toMatchObject({ code: ErrorCodes.FORBIDDEN, data: { stream: 'orchestration/default', action: 'write' } });
    // Replaying the victim's command id is answered by identity first: no ack, no hint it exists.
    expect(
      (
        await spoofer.call('command', {
          id: 'ide-1:1',
          stream: 'orchestration/default',
          type: 'workspace.setDesired',
          payload: { workspaceId: 'w1', desired: 2, lease: true },
        })
      ).error.code,
    ).toBe(ErrorCodes.FORBIDDEN);
    // The spoofer leaving does not count as the owner leaving: the lease outlives twice the grace period.
    spoofer.terminate();
    await spoofer.closed;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await world.targets()).toEqual(before);
    const still = await victim.call('command', {
      id: 'ide-1:2',
      stream: 'orchestration/default',
      type: 'workspace.setRunning',
      payload: { workspaceId: 'w1', running: 1 },
    });
    expect(still.result).toMatchObject({ version: 2 });
    // A second connection of the owner itself is welcome.
    const again = await world.connect(kind, { clientId: 'ide-1', token: 'alice' });
    expect((await again.call('ping')).result).toBeDefined();
    expect(world.errors).toEqual([]);
  });

  it('an authenticate hook can bind client ids to identities: a borrowed one is UNAUTHORIZED', async () => {
    const world = await startWorld({
      hub: { authenticate: ({ token, clientId }) => (token && clientId?.startsWith(`${token}:`) ? { id: token } : undefined) },
    });
    const owner = await world.connect(kind, { clientId: 'alice:ide', token: 'alice' });
    const spoofer = await world.connect(kind);
    expect((await spoofer.call('hello', { protocol: 1, clientId: 'alice:ide', token: 'mallory' })).error.code).toBe(ErrorCodes.UNAUTHORIZED);
    expect((await owner.call('ping')).result).toEqual({ time: expect.any(Number) });
  });

  it('absurd versions and since values: refused as INVALID_PARAMS, answered by snapshot or VERSION_CONFLICT; nothing changes', async () => {
    const world = await startWorld();
    const others = await bystanders(world);
    await world.hub.execute(add('seed-1'));
    const attacker = await world.connect(kind, { clientId: 'attacker' });
    const before = await world.targets();
    for (const since of [-1, 0.5, 2 ** 53, Number.MAX_VALUE, '3', null, true, [], {}]) {
      expect((await attacker.call('subscribe', { stream: 'counter/x', since })).error.code, `since ${JSON.stringify(since)}`).toBe(ErrorCodes.INVALID_PARAMS);
    }
    // Beyond the head (the client's version is not of this log): a snapshot at the head, no events.
    for (const since of [2, Number.MAX_SAFE_INTEGER]) {
      const answer = await attacker.call('subscribe', { stream: 'counter/x', since });
      expect(answer.result).toEqual({ stream: 'counter/x', version: 1, head: 1, oldestRetained: 1, snapshot: { n: 1 } });
    }
    const conflict = await attacker.call('command', { ...add('absurd-1'), expectedVersion: Number.MAX_SAFE_INTEGER });
    expect(conflict.error).toMatchObject({ code: ErrorCodes.VERSION_CONFLICT, data: { currentVersion: 1 } });
    for (const expectedVersion of [-1, 2 ** 60, 1.5, '1']) {
      expect((await attacker.call('command', { ...add(`absurd-${String(expectedVersion)}`), expectedVersion })).error.code).toBe(ErrorCodes.INVALID_PARAMS);
    }
    await expectUnharmed(world, before, others);
  });

  it('the same command id with another payload is COMMAND_ID_CONFLICT; with the same one, the original ack', async () => {
    const world = await startWorld();
    const others = await bystanders(world);
    const owner = await world.connect(kind, { clientId: 'owner' });
    expect((await owner.call('command', add('shared-1', 'counter/owner', 1))).result).toEqual({ id: 'shared-1', stream: 'counter/owner', version: 1 });
    const attacker = await world.connect(kind, { clientId: 'attacker' });
    const before = await world.targets();
    const owned = await world.hub.read('counter/owner');
    for (const reuse of [add('shared-1', 'counter/owner', 2), add('shared-1', 'counter/x', 1), { ...add('shared-1', 'counter/owner', 1), type: 'other' }]) {
      expect((await attacker.call('command', reuse)).error).toMatchObject({ code: ErrorCodes.COMMAND_ID_CONFLICT, data: { id: 'shared-1' } });
    }
    expect((await attacker.call('command', add('shared-1', 'counter/owner', 1))).result).toEqual({
      id: 'shared-1',
      stream: 'counter/owner',
      version: 1,
      duplicate: true,
    });
    expect(await world.hub.read('counter/owner')).toEqual(owned);
    await expectUnharmed(world, before, others);
  });

  it('1,000 subscriptions from one client, pipelined: all answered, all live, all released', async () => {
    const world = await startWorld();
    const others = await bystanders(world);
    const attacker = await world.connect(kind, { clientId: 'collector' });
    const before = await world.targets();
    const streams = Array.from({ length: 1_000 }, (_, i) => `counter/many-${i}`);
    const ids = streams.map((stream) => attacker.request('subscribe', { stream }));
    const answers = await collect(attacker, ids);
    expect(answers.map((answer) => answer.result?.stream)).toEqual(streams);
    await world.hub.execute(add('many-write', 'counter/many-999', 3));
    expect(await attacker.next()).toMatchObject({ method: 'events', params: { stream: 'counter/many-999', events: [{ version: 1, data: { by: 3 } }] } });
    const released = await collect(
      attacker,
      streams.map((stream) => attacker.request('unsubscribe', { stream })),
    );
    expect(released.every((answer) => JSON.stringify(answer.result) === '{}')).toBe(true);
    await world.hub.execute(add('many-write-2', 'counter/many-999', 1));
    expect((await attacker.call('ping')).result).toBeDefined();
    expect(attacker.unread).toBe(0);
    await expectUnharmed(world, before, others);
  });
});

describe('the client id of a client that left', () => {
  const GRACE = 10_000;
  const STREAM = 'orchestration/default';
  const users: Record<string, Identity> = { alice: { id: 'alice' }, mallory: { id: 'mallory' } };

  function hubWithLeases(clock: FakeClock): Hub {
    return new Hub({ domains: ATTACK_DOMAINS, clock, leaseGraceMs: GRACE, authenticate: ({ token }) => users[token ?? ''], rateLimit: false });
  }

  async function workspaces(hub: Hub): Promise<OrchestrationState['workspaces']> {
    return ((await hub.read(STREAM)).state as OrchestrationState).workspaces;
  }

  it('cannot be taken by another identity to keep its lease alive: the hello is refused, and the lease expires after the grace period as if nobody came', async () => {
    const clock = new FakeClock();
    const hub = hubWithLeases(clock);
    try {
      const owner = new MemoryWire(hub);
      expect((await owner.call('hello', { protocol: 1, clientId: 'ide-1', token: 'alice' })).result).toBeDefined();
      const leased = await owner.call('command', {
        id: 'ide-1:1',
        stream: STREAM,
        type: 'workspace.setDesired',
        payload: { workspaceId: 'w1', desired: 2, lease: true },
      });
      expect(leased.result).toMatchObject({ version: 1 });
      owner.close();
      await clock.flush();

      const attacker = new MemoryWire(hub);
      const refused = await attacker.call('hello', { protocol: 1, clientId: 'ide-1', token: 'mallory' });
      expect(refused.error).toMatchObject({ code: ErrorCodes.FORBIDDEN, data: { clientId: 'ide-1' } });
      // Nor can an in-process caller acting for mallory (a REST request) use the id.
      await expect(
        hub.execute(
          { id: 'm:1', stream: STREAM, type: 'workspace.setRunning', payload: { workspaceId: 'w1', running: 1 } },
          { identity: users['mallory']!, clientId: 'ide-1' },
        ),
      ).rejects.toMatchObject({
        code: 'FORBIDDEN',
        data: { clientId: 'ide-1' },
      });

      await clock.advance(GRACE - 1);
      expect((await workspaces(hub))['w1']).toMatchObject({ leasedTo: 'ide-1' });
      await clock.advance(1);
      await hub.stream(STREAM).settled();
      expect((await workspaces(hub))['w1']).toBeUndefined();
      const removed = (await hub.store.read(STREAM, 1, 100)).filter((event) => event.type === 'workspace.removed');
      expect(removed.map((event) => event.data)).toEqual([{ workspaceId: 'w1', reason: 'leaseExpired' }]);

      // Its leases gone, the id belongs to nobody: whoever says hello with it now gets it, and nothing else.
      const later = new MemoryWire(hub);
      expect((await later.call('hello', { protocol: 1, clientId: 'ide-1', token: 'mallory' })).result).toBeDefined();
      expect(await workspaces(hub)).toEqual({});
      attacker.close();
      later.close();
    } finally {
      await hub.close();
    }
  });

  it('is the same client again for the same identity within the grace period: its lease is kept', async () => {
    const clock = new FakeClock();
    const hub = hubWithLeases(clock);
    try {
      const owner = new MemoryWire(hub);
      await owner.call('hello', { protocol: 1, clientId: 'ide-1', token: 'alice' });
      await owner.call('command', { id: 'ide-1:1', stream: STREAM, type: 'workspace.setDesired', payload: { workspaceId: 'w1', desired: 2, lease: true } });
      owner.close();
      await clock.advance(GRACE / 2);
      const back = new MemoryWire(hub);
      expect((await back.call('hello', { protocol: 1, clientId: 'ide-1', token: 'alice' })).result).toBeDefined();
      await clock.advance(GRACE * 3);
      expect((await workspaces(hub))['w1']).toMatchObject({ leasedTo: 'ide-1' });
      back.close();
    } finally {
      await hub.close();
    }
  });
});

// The pacing of catch-up pages does not depend on the codec: one WebSocket codec is enough.
describe.each(['ws-json', 'stdio'] as const)('a huge resync over %s', (kind) => {
  it('a huge resync from a client that does not read: pages wait for it, its buffer stays bounded, others are served, and it gets every event once it reads', async () => {
    const maxBufferedBytes = 512 * 1024;
    const world = await startWorld({ hub: { maxBufferedBytes, catchUpPage: 5, rateLimit: false } });
    const others = await bystanders(world);
    const text = 'r'.repeat(50_000);
    const events = 300; // 15 MB of events, far more than the bound
    for (let i = 1; i <= events; i++) await world.hub.execute({ id: `r-${i}`, stream: 'blob/long', type: 'put', payload: { text } });
    const attacker = await world.connect(kind, { clientId: 'resyncer' });
    const before = await world.targets();
    const serverEnd = world.transports.at(-1)!;
    stopReading(attacker);
    const id = attacker.request('subscribe', { stream: 'blob/long', since: 0 });
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      peak = Math.max(peak, serverEnd.bufferedAmount ?? 0);
      await others.served();
    }
    // A page is about 250 KB: the hub stops adding pages once a quarter of the bound is unsent.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(maxBufferedBytes + 2 * 5 * 50_100);
    resumeReading(attacker);
    const { response } = await attacker.response(id);
    let version: number = response.result.version;
    while (version < events) {
      const message = await attacker.next();
      expect(message.method).toBe('events');
      for (const event of message.params.events) {
        expect(event.version).toBe(version + 1);
        version = event.version;
      }
    }
    expect(version).toBe(events);
    await expectUnharmed(world, before, others);
  });
});

/** The client's socket stops reading: the kernel buffers fill, then the hub's send buffer. */
function stopReading(peer: Peer): void {
  socketOf(peer).pause();
}

function resumeReading(peer: Peer): void {
  socketOf(peer).resume();
}

function socketOf(peer: Peer): { pause(): void; resume(): void } {
  const raw = (peer as unknown as { raw: { socket: unknown } }).raw;
  if (peer.kind === 'stdio') return raw.socket as { pause(): void; resume(): void };
  return (raw.socket as { _socket: { pause(): void; resume(): void } })._socket;
}

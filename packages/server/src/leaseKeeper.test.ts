import { describe, expect, it } from 'vitest';
// The server package cannot depend on @lockstep/testkit (the testkit depends on the server), so the
// fake clock is taken from its source.
import { FakeClock } from '../../testkit/src/fakeClock.js';
import type { PresenceRegistry } from './eventStore.js';
import { LeaseKeeper } from './leaseKeeper.js';
import { MemoryPresence } from './memoryEventStore.js';
import type { StreamHost } from './streamHost.js';

/**
 * The lease keepers of hubs sharing a presence registry, on one fake clock: every expiry is at an
 * exact time, so "one grace period after the holder was last seen" is checked to the millisecond.
 */
const GRACE = 10_000;
const HOLDER = 'ide-1';

/** A stream whose state leases one entry to `holder`, as `LeaseKeeper.watch` reads it. */
function leasedTo(holder: string): StreamHost {
  return { domain: { leases: { holders: () => [{ key: 'ws-1', holder }], expire: () => ({}) } }, state: {} } as unknown as StreamHost;
}

interface KeeperHub {
  keeper: LeaseKeeper;
  /** When this hub expired each holder. */
  expired: Array<{ holder: string; at: number }>;
  errors: unknown[];
}

/** Hubs on one fake clock, sharing `registry` (`null`: each hub alone, as without a shared store). */
function world(registry: PresenceRegistry | null = new MemoryPresence()) {
  const clock = new FakeClock();
  const start = clock.now();
  const hub = (hubId: string): KeeperHub => {
    const expired: KeeperHub['expired'] = [];
    const errors: unknown[] = [];
    const shared = registry === null ? undefined : { registry, hubId, ttlMs: GRACE, onError: (error: unknown) => errors.push(error) };
    const keeper = new LeaseKeeper(clock, GRACE, (holder) => expired.push({ holder, at: clock.now() }), shared);
    return { keeper, expired, errors };
  };
  /** Advances to `at` ms after the start. */
  const at = (ms: number) => clock.advance(start + ms - clock.now());
  return { clock, start, hub, at };
}

describe('lease keeper: the grace period runs from when the holder was last seen, on any hub', () => {
  it('expires a holder that left one grace period after it left, on the hub it left and on a hub that only watched', async () => {
    // The case: the observer saw the lease at 0, the holder left at 3 s; the observer used to
    // expire it at 10 s (7 s after it left).
    const { start, hub, at } = world();
    const a = hub('hub-a');
    const b = hub('hub-b');
    a.keeper.present(HOLDER);
    b.keeper.watch(leasedTo(HOLDER));
    await at(3_000);
    a.keeper.absent(HOLDER);
    await at(3_000 + GRACE - 1);
    expect([...a.expired, ...b.expired]).toEqual([]);
    await at(3_000 + GRACE);
    expect(a.expired).toEqual([{ holder: HOLDER, at: start + 3_000 + GRACE }]);
    expect(b.expired).toEqual([{ holder: HOLDER, at: start + 3_000 + GRACE }]);
  });

  it('keeps a holder that reconnects every 2 s, to either hub, for 30 s; then expires it one grace period after it left', async () => {
    const { start, hub, at } = world();
    const hubs = [hub('hub-a'), hub('hub-b')];
    hubs[0]!.keeper.present(HOLDER);
    hubs[1]!.keeper.watch(leasedTo(HOLDER));
    // Connected for 0.1 s of every 2 s, away 1.9 s: on a, a, b, a, a, b, …
    let on = hubs[0]!;
    for (let cycle = 0; cycle < 15; cycle++) {
      await at(cycle * 2_000 + 100);
      on.keeper.absent(HOLDER);
      on = hubs[cycle % 3 === 1 ? 1 : 0]!;
      await at((cycle + 1) * 2_000);
      on.keeper.present(HOLDER);
    }
    await at(30_100);
    on.keeper.absent(HOLDER);
    await at(30_100 + GRACE - 1);
    expect(hubs.flatMap((h) => h.expired)).toEqual([]);
    await at(30_100 + GRACE);
    // The hub it left expires it then; the other looks when its own grace would end and does too.
    expect(on.expired).toEqual([{ holder: HOLDER, at: start + 30_100 + GRACE }]);
    for (const h of hubs) expect(h.expired.every((e) => e.at === start + 30_100 + GRACE)).toBe(true);
  });

  it('keeps a holder connected to another hub however long, and looks once per grace period', async () => {
    const { hub, at } = world();
    const a = hub('hub-a');
    const b = hub('hub-b');
    a.keeper.present(HOLDER);
    b.keeper.watch(leasedTo(HOLDER));
    await at(GRACE * 10);
    expect(b.expired).toEqual([]);
    a.keeper.absent(HOLDER);
    await at(GRACE * 11);
    expect(b.expired.map((e) => e.holder)).toEqual([HOLDER]);
  });

  it('counts from when the hub learned of a holder nobody has seen (a single hub after a restart)', async () => {
    const { start, hub, at } = world();
    const b = hub('hub-b');
    await at(1_000);
    b.keeper.watch(leasedTo(HOLDER));
    await at(1_000 + GRACE);
    expect(b.expired).toEqual([{ holder: HOLDER, at: start + 1_000 + GRACE }]);
  });

  it('counts from a departure another hub recorded before this hub learned of the lease', async () => {
    const { start, hub, at } = world();
    const a = hub('hub-a');
    a.keeper.present(HOLDER);
    await at(1_000);
    a.keeper.absent(HOLDER);
    await at(4_000);
    const b = hub('hub-b');
    b.keeper.watch(leasedTo(HOLDER));
    // b's first look is a grace period after it learned (4 s + grace); the holder was gone by then.
    await at(4_000 + GRACE);
    expect(b.expired).toEqual([{ holder: HOLDER, at: start + 4_000 + GRACE }]);
    expect(a.expired).toEqual([{ holder: HOLDER, at: start + 1_000 + GRACE }]);
  });

  it('expires the holders of a hub that shut down one grace period after it did, unless they reconnect', async () => {
    const { start, hub, at } = world();
    const a = hub('hub-a');
    const b = hub('hub-b');
    a.keeper.present(HOLDER);
    a.keeper.present('ide-2');
    b.keeper.watch(leasedTo(HOLDER));
    b.keeper.watch(leasedTo('ide-2'));
    await at(2_000);
    await a.keeper.stop();
    await at(2_000 + GRACE / 2);
    b.keeper.present('ide-2');
    await at(2_000 + GRACE * 3);
    expect(b.expired).toEqual([{ holder: HOLDER, at: start + 2_000 + GRACE }]);
  });

  it('counts the holders of a hub that stopped heartbeating (a crash) as seen until it stops counting, then for a grace period', async () => {
    const registry = new MemoryPresence();
    const { start, hub, at } = world(registry);
    const a = hub('hub-a');
    const b = hub('hub-b');
    a.keeper.present(HOLDER);
    b.keeper.watch(leasedTo(HOLDER));
    // Hub a freezes after its first heartbeat (at 0): no more beats, its connections never close.
    const heartbeat = registry.heartbeat.bind(registry);
    registry.heartbeat = (hubId, now) => (hubId === 'hub-a' ? Promise.resolve() : heartbeat(hubId, now));
    await at(2 * GRACE - 1);
    expect(b.expired).toEqual([]);
    await at(2 * GRACE);
    expect(b.expired).toEqual([{ holder: HOLDER, at: start + 2 * GRACE }]);
  });

  it('expires from its own view with a registry that cannot say when a holder was last seen', async () => {
    const memory = new MemoryPresence();
    // A registry written before `sinceLastSeen`: present elsewhere or not, nothing more.
    const older: PresenceRegistry = {
      enter: (...args) => memory.enter(...args),
      leave: (...args) => memory.leave(...args),
      heartbeat: (...args) => memory.heartbeat(...args),
      isPresentElsewhere: (...args) => memory.isPresentElsewhere(...args),
      forget: (...args) => memory.forget(...args),
    };
    const { start, hub, at } = world(older);
    const a = hub('hub-a');
    const b = hub('hub-b');
    a.keeper.present(HOLDER);
    b.keeper.watch(leasedTo(HOLDER));
    await at(GRACE * 3);
    expect(b.expired).toEqual([]);
    a.keeper.absent(HOLDER);
    await at(GRACE * 4);
    expect(a.expired).toEqual([{ holder: HOLDER, at: start + GRACE * 4 }]);
    expect(b.expired).toEqual([{ holder: HOLDER, at: start + GRACE * 4 }]);
  });
});

describe('lease keeper: presence writes', () => {
  it('keeps the enter and leave of a holder in order, so a quick reconnect is not undone by a slow leave', async () => {
    const registry = new MemoryPresence();
    let releaseLeave!: () => void;
    const leaveHeld = new Promise<void>((resolve) => (releaseLeave = resolve));
    const leave = registry.leave.bind(registry);
    let held = false;
    registry.leave = async (hubId, holder, now) => {
      if (!held) {
        held = true;
        await leaveHeld;
      }
      return leave(hubId, holder, now);
    };
    const { clock, hub } = world(registry);
    const a = hub('hub-a');
    a.keeper.present(HOLDER);
    await clock.flush();
    a.keeper.absent(HOLDER);
    a.keeper.present(HOLDER);
    await clock.flush();
    releaseLeave();
    await clock.advance(1);
    expect(await registry.sinceLastSeen('hub-b', HOLDER, GRACE, clock.now())).toBe(0);
  });

  it('announces a holder again after the next heartbeat when its announcement failed', async () => {
    const registry = new MemoryPresence();
    const enter = registry.enter.bind(registry);
    let failures = 1;
    registry.enter = (hubId, holder, now) => (failures-- > 0 ? Promise.reject(new Error('store down')) : enter(hubId, holder, now));
    const { clock, hub } = world(registry);
    const a = hub('hub-a');
    a.keeper.present(HOLDER);
    await clock.flush();
    expect(a.errors).toHaveLength(1);
    expect(await registry.isPresentElsewhere('hub-b', HOLDER, GRACE, clock.now())).toBe(false);
    await clock.advance(GRACE / 3);
    expect(await registry.isPresentElsewhere('hub-b', HOLDER, GRACE, clock.now())).toBe(true);
  });

  it('does not expire a holder while the registry cannot answer, and does once it answers again', async () => {
    const registry = new MemoryPresence();
    const since = registry.sinceLastSeen.bind(registry);
    let down = true;
    registry.sinceLastSeen = (...args) => (down ? Promise.reject(new Error('store down')) : since(...args));
    const { hub, at } = world(registry);
    const b = hub('hub-b');
    b.keeper.watch(leasedTo(HOLDER));
    await at(GRACE * 3);
    expect(b.expired).toEqual([]);
    expect(b.errors.length).toBeGreaterThan(0);
    down = false;
    await at(GRACE * 4);
    expect(b.expired.map((e) => e.holder)).toEqual([HOLDER]);
  });

  it('without a registry, expires a holder one grace period after it left this hub', async () => {
    const { start, hub, at } = world(null);
    const a = hub('hub-a');
    a.keeper.present(HOLDER);
    a.keeper.present(HOLDER);
    await at(1_000);
    a.keeper.absent(HOLDER);
    await at(5_000);
    a.keeper.absent(HOLDER);
    await at(5_000 + GRACE);
    expect(a.expired).toEqual([{ holder: HOLDER, at: start + 5_000 + GRACE }]);
  });
});

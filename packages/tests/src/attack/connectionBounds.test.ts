import { ErrorCodes, type Clock } from '@lockstep/core';
import { HUB_DEFAULTS } from '@lockstep/server';
import { describe, expect, it } from 'vitest';
import { TRANSPORT_KINDS, bystanders, collect, expectUnharmed, startWorld } from './world.js';

/**
 * What one connection may make the hub hold in streams: at most `maxSubscriptionsPerConnection`
 * subscriptions at once, and at most `newStreamsPerMinute` streams it causes to be loaded. Past either,
 * a documented error and nothing changed — no subscription, no stream loaded, no event — while the
 * connection keeps being served within its bounds, and every other connection as before.
 */

/** A clock whose time only moves when told; timers are real (hello timeouts, drain checks). */
function steppedClock(): Clock & { step(ms: number): void } {
  let now = 1_800_000_000_000;
  return {
    now: () => now,
    setTimeout: (callback, ms) => setTimeout(callback, ms),
    clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
    step: (ms) => {
      now += ms;
    },
  };
}

describe('the defaults', () => {
  it('allow 4,096 subscriptions and 1,000 new streams a minute per connection', () => {
    expect(HUB_DEFAULTS.maxSubscriptionsPerConnection).toBe(4_096);
    expect(HUB_DEFAULTS.newStreamsPerMinute).toBe(1_000);
  });
});

describe.each(TRANSPORT_KINDS)('per-connection bounds over %s', (kind) => {
  it('subscriptions past maxSubscriptionsPerConnection are LIMIT_EXCEEDED, change nothing, and free places are taken again', async () => {
    const world = await startWorld({ hub: { maxSubscriptionsPerConnection: 10 } });
    const others = await bystanders(world);
    const attacker = await world.connect(kind, { clientId: 'collector' });
    const before = await world.targets();
    const streams = Array.from({ length: 12 }, (_, i) => `counter/s-${i}`);
    // Pipelined: with eight answered at once, the bound still holds exactly.
    const answers = await collect(
      attacker,
      streams.map((stream) => attacker.request('subscribe', { stream })),
    );
    expect(answers.slice(0, 10).map((answer) => answer.result?.stream)).toEqual(streams.slice(0, 10));
    for (const answer of answers.slice(10)) {
      expect(answer.error).toMatchObject({ code: ErrorCodes.LIMIT_EXCEEDED, data: { limit: 'maxSubscriptionsPerConnection', max: 10 } });
    }
    // Nothing was loaded for the refused ones, and they receive nothing.
    expect(world.hub.wouldLoad('counter/s-10')).toBe(true);
    expect(world.hub.wouldLoad('counter/s-11')).toBe(true);
    // Subscribing again to a stream it has takes no new place.
    expect((await attacker.call('subscribe', { stream: 'counter/s-3', since: 0 })).result).toMatchObject({ stream: 'counter/s-3' });
    // A place freed is a place to take.
    expect((await attacker.call('unsubscribe', { stream: 'counter/s-0' })).result).toEqual({});
    expect((await attacker.call('subscribe', { stream: 'counter/s-10' })).result).toMatchObject({ stream: 'counter/s-10' });
    expect((await attacker.call('subscribe', { stream: 'counter/s-11' })).error.code).toBe(ErrorCodes.LIMIT_EXCEEDED);
    // What it holds is live: an event of its tenth stream reaches it.
    await world.hub.execute({ id: 'bound-1', stream: 'counter/s-10', type: 'add', payload: { by: 1 } });
    expect(await attacker.next()).toMatchObject({ method: 'events', params: { stream: 'counter/s-10', events: [{ version: 1 }] } });
    // The bound is per connection.
    const other = await world.connect(kind, { clientId: 'other' });
    expect((await other.call('subscribe', { stream: 'counter/s-11' })).result).toMatchObject({ stream: 'counter/s-11' });
    await expectUnharmed(world, before, others);
  });

  it('streams past newStreamsPerMinute are RATE_LIMITED with retryAfterMs, nothing is loaded; loaded streams and other connections are served; a minute later it may again', async () => {
    const clock = steppedClock();
    const world = await startWorld({ hub: { clock, newStreamsPerMinute: 5 } });
    const others = await bystanders(world);
    const attacker = await world.connect(kind, { clientId: 'loader' });
    const before = await world.targets();
    // Five new streams, by subscribe and by command.
    for (const stream of ['counter/n-0', 'counter/n-1', 'counter/n-2']) expect((await attacker.call('subscribe', { stream })).result).toMatchObject({ stream });
    for (const stream of ['counter/n-3', 'counter/n-4']) {
      expect((await attacker.call('command', { id: `load-${stream.slice('counter/'.length)}`, stream, type: 'add', payload: { by: 1 } })).result).toMatchObject(
        { stream, version: 1 },
      );
    }
    const subscribe = await attacker.call('subscribe', { stream: 'counter/n-5' });
    expect(subscribe.error).toMatchObject({ code: ErrorCodes.RATE_LIMITED, data: { limit: 'newStreamsPerMinute' } });
    expect(subscribe.error.data.retryAfterMs).toBeGreaterThan(0);
    const command = await attacker.call('command', { id: 'load-n-6', stream: 'counter/n-6', type: 'add', payload: { by: 1 } });
    expect(command.error).toMatchObject({ code: ErrorCodes.RATE_LIMITED, data: { limit: 'newStreamsPerMinute' } });
    expect(world.hub.wouldLoad('counter/n-5')).toBe(true);
    expect(world.hub.wouldLoad('counter/n-6')).toBe(true);
    expect(await world.hub.store.read('counter/n-6', 1, 10)).toEqual([]);
    // Streams already loaded cost nothing.
    expect((await attacker.call('subscribe', { stream: 'counter/x' })).result).toMatchObject({ stream: 'counter/x' });
    expect((await attacker.call('command', { id: 'again-n-3', stream: 'counter/n-3', type: 'add', payload: { by: 1 } })).result).toMatchObject({ version: 2 });
    // Another connection has a budget of its own.
    const other = await world.connect(kind, { clientId: 'other-loader' });
    expect((await other.call('subscribe', { stream: 'counter/n-5' })).result).toMatchObject({ stream: 'counter/n-5' });
    // A minute later the budget is back.
    clock.step(60_000);
    expect((await attacker.call('command', { id: 'load-n-6', stream: 'counter/n-6', type: 'add', payload: { by: 1 } })).result).toMatchObject({ version: 1 });
    await expectUnharmed(world, before, others);
  });
});

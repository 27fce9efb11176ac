import { createMemoryLink, createRandom, systemClock } from '@lockstep/core';
import { FakeClock } from '@lockstep/core/testing';
import { describe, expect, it } from 'vitest';
import { faultyTransport } from './faultyTransport.js';
import { describeTransportConformance } from './transportConformance.js';

// Healed (no faults), the decorator is a transport like any other: the contract holds through it.
describeTransportConformance('faultyTransport without faults, over a memory link', () => {
  const link = createMemoryLink();
  const wrap = (end: typeof link.client, seed: number) => faultyTransport(end, { faults: {}, random: createRandom(seed), clock: systemClock });
  return { client: wrap(link.client, 1), server: wrap(link.server, 2) };
});

describe('faultyTransport', () => {
  it('drops and duplicates frames as seeded, in both directions', async () => {
    const link = createMemoryLink();
    const clock = new FakeClock();
    const faulty = faultyTransport(link.client, { faults: { drop: 0.3, duplicate: 0.3 }, random: createRandom(7), clock });
    const up: unknown[] = [];
    const down: unknown[] = [];
    link.server.frames.subscribe((frame) => up.push(frame));
    faulty.frames.subscribe((frame) => down.push(frame));
    for (let i = 0; i < 200; i++) {
      faulty.send(`up ${i}`);
      link.server.send(`down ${i}`);
    }
    await clock.flush();
    for (const received of [up, down]) {
      expect(received.length).not.toBe(200);
      expect(new Set(received).size).toBeLessThan(200); // some lost
      expect(received.length).toBeGreaterThan(new Set(received).size); // some twice
    }
  });

  it('holds a frame back past later ones, and passes the close on only after the held frames', async () => {
    const link = createMemoryLink();
    const clock = new FakeClock();
    const faulty = faultyTransport(link.client, { faults: { delayMs: 10 }, random: createRandom(1), clock });
    const seen: string[] = [];
    faulty.frames.subscribe((frame) => seen.push(frame as string));
    faulty.state.subscribe((state) => seen.push(state.status));
    link.server.send('a');
    link.server.close('server done');
    await clock.flush();
    expect(seen).toEqual(['open']);
    await clock.advance(10);
    expect(seen).toEqual(['open', 'a', 'closed']);
  });

  it('disconnect cuts at once: held frames are lost, the inner transport is closed, send answers false', async () => {
    const link = createMemoryLink();
    const clock = new FakeClock();
    const faulty = faultyTransport(link.client, { faults: { delayMs: 10 }, random: createRandom(1), clock });
    const seen: string[] = [];
    faulty.frames.subscribe((frame) => seen.push(frame as string));
    link.server.send('held');
    await clock.flush();
    faulty.disconnect('cut');
    await clock.advance(20);
    expect(seen).toEqual([]);
    expect(faulty.send('late')).toBe(false);
    const serverClosed = await new Promise((resolve) => link.server.state.subscribe((state) => state.status === 'closed' && resolve(state.reason)));
    expect(serverClosed).toBe('cut');
  });
});

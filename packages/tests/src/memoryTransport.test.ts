import { createMemoryLink, createRandom, type Frame, type LinkFaults, type MemoryLink, type Transport } from '@lockstep/core';
import { describeTransportConformance, FakeClock } from '@lockstep/testkit';
import { filter, firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { describe, expect, it } from 'vitest';

describeTransportConformance(
  'memory transport',
  () => {
    const link = createMemoryLink();
    return { client: link.client, server: link.server };
  },
  { binary: true },
);

const SEED = 0x5eed;

function faultyLink(faults: LinkFaults, clock = new FakeClock()): { link: MemoryLink; clock: FakeClock } {
  return { link: createMemoryLink({ faults, random: createRandom(SEED), clock }), clock };
}

function numbered(count: number, prefix = 'frame'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix} ${i}`);
}

/** Everything `end` receives from now on, as it arrives. */
function collect(end: Transport): Frame[] {
  const frames: Frame[] = [];
  end.frames.subscribe((frame) => frames.push(frame));
  return frames;
}

const closedReason = async (end: Transport) => {
  const state = await firstValueFrom(end.state.pipe(filter((s) => s.status === 'closed')));
  return state.status === 'closed' ? state.reason : undefined;
};

describe('memory link faults', () => {
  it('drops every frame at drop 1', async () => {
    const { link } = faultyLink({ drop: 1 });
    const received = collect(link.server);
    for (const frame of numbered(100)) expect(link.client.send(frame)).toBe(true);
    link.setFaults({});
    const marker = firstValueFrom(link.server.frames);
    link.client.send('after healing');
    // Frames without delay are delivered in order, so the marker arriving first proves the others are gone.
    expect(await marker).toBe('after healing');
    expect(received).toEqual(['after healing']);
  });

  it('delivers every frame twice at duplicate 1', async () => {
    const { link } = faultyLink({ duplicate: 1 });
    const sent = numbered(50);
    const arriving = firstValueFrom(link.client.frames.pipe(take(100), toArray()));
    for (const frame of sent) link.server.send(frame);
    expect(await arriving).toEqual(sent.flatMap((frame) => [frame, frame]));
  });

  it('changes the order under reorder, and still delivers every frame', async () => {
    const { link, clock } = faultyLink({ reorder: 0.3, reorderWindowMs: 50 });
    const sent = numbered(200);
    const received = collect(link.server);
    for (const frame of sent) link.client.send(frame);
    await clock.advanceUntil(() => received.length === sent.length);
    expect(received).not.toEqual(sent);
    expect([...received].sort()).toEqual([...sent].sort());
    await clock.advance(100);
    expect(received).toHaveLength(sent.length);
  });

  it('holds every frame for a fixed delay of fake time', async () => {
    const { link, clock } = faultyLink({ delayMs: 50 });
    const received = collect(link.server);
    link.client.send('first');
    link.client.send('second');
    await clock.advance(49);
    expect(received).toEqual([]);
    await clock.advance(1);
    expect(received).toEqual(['first', 'second']);
  });

  it('delivers a close after the delayed frames sent before it', async () => {
    const { link, clock } = faultyLink({ delayMs: [10, 30] });
    const everything = lastValueFrom(link.server.frames.pipe(toArray()));
    const sent = numbered(20);
    for (const frame of sent) link.client.send(frame);
    link.client.close('bye');
    await clock.advance(5);
    expect(await firstValueFrom(link.server.state)).toEqual({ status: 'open' });
    await clock.advance(30);
    expect([...(await everything)].sort()).toEqual([...sent].sort());
    expect(await closedReason(link.server)).toBe('bye');
  });

  it('closes both ends and loses the frame at disconnect 1', async () => {
    const { link } = faultyLink({ disconnect: 1 });
    const atServer = lastValueFrom(link.server.frames.pipe(toArray()));
    link.client.send('never arrives');
    expect(await closedReason(link.client)).toBe('injected disconnect');
    expect(await closedReason(link.server)).toBe('injected disconnect');
    expect(await atServer).toEqual([]);
    expect(link.client.send('after')).toBe(false);
    expect(link.server.send('after')).toBe(false);
  });

  it('disconnect() closes both ends and loses the frames in flight', async () => {
    const { link, clock } = faultyLink({ delayMs: 10 });
    const atServer = lastValueFrom(link.server.frames.pipe(toArray()));
    const atClient = lastValueFrom(link.client.frames.pipe(toArray()));
    link.client.send('in flight');
    link.server.send('in flight too');
    link.disconnect('cable pulled');
    await clock.advance(20);
    expect(await atServer).toEqual([]);
    expect(await atClient).toEqual([]);
    expect(await closedReason(link.client)).toBe('cable pulled');
    expect(await closedReason(link.server)).toBe('cable pulled');
  });

  it('heals with setFaults({})', async () => {
    const { link } = faultyLink({ drop: 0.5, duplicate: 0.5 });
    for (const frame of numbered(100, 'faulty')) link.client.send(frame);
    link.setFaults({});
    const sent = numbered(100, 'healed');
    const arriving = firstValueFrom(
      link.server.frames.pipe(
        filter((frame) => typeof frame === 'string' && frame.startsWith('healed')),
        take(sent.length),
        toArray(),
      ),
    );
    for (const frame of sent) link.client.send(frame);
    expect(await arriving).toEqual(sent);
  });

  it('replays the same faults from the same seed', async () => {
    const run = async () => {
      const clock = new FakeClock();
      const link = createMemoryLink({ faults: { drop: 0.3, duplicate: 0.3, reorder: 0.3 }, random: createRandom(SEED), clock });
      const received = collect(link.server);
      for (const frame of numbered(200)) link.client.send(frame);
      await clock.advance(1_000);
      return received;
    };
    const first = await run();
    expect(first.length).toBeGreaterThan(0);
    expect(await run()).toEqual(first);
  });
});

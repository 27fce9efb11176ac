import { afterEach, describe, expect, it } from 'vitest';
import { DELIVERY_DEFAULTS } from './deliveryPolicy.js';
import { waitFor } from './test/helpers.js';
import { Viewer, startHub, type TestHub } from './test/wsHarness.js';

/**
 * A program that prints without end (issue 9, resources): the hub keeps a bounded scrollback and a
 * bounded send buffer per viewer however long it runs, a viewer that stopped reading costs nothing
 * more as the output goes on, a reading viewer gets contiguous output (or explicit truncation
 * markers), and the hub keeps serving everyone else.
 */

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** The largest JSON frame of one chunk: 64 KiB as base64, plus the envelope. */
const CHUNK_FRAME_BYTES = Math.ceil((64 * 1024) / 3) * 4 + 200;

describe('a terminal that prints without end', () => {
  it('keeps every per-viewer and per-terminal buffer bounded while the output goes on, and serves the others', async () => {
    const scrollbackBytes = 1024 * 1024;
    const test: TestHub = await startHub({ scrollbackBytes });
    cleanup.push(() => test.close());
    const terminal = await test.extension.terminals.spawn({ id: 'endless', file: 'yes', args: ['all work and no play makes jack a dull boy'] });
    const stalled = await Viewer.connect(test.url, { clientId: 'stalled' });
    const reading = await Viewer.connect(test.url, { clientId: 'reading' });
    const other = await Viewer.connect(test.url, { clientId: 'other' });
    cleanup.push(async () => {
      stalled.socket.terminate();
      await Promise.all([reading.close(), other.close()]);
    });
    await stalled.attach('endless');
    await reading.attach('endless');
    stalled.stall();

    // Let it run past several times its scrollback, sampling what the hub holds as it goes.
    const samples: Array<{ retained: number; stalledBuffered: number }> = [];
    let commands = 0;
    while (terminal.end < 8 * scrollbackBytes) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const info = test.extension.attachments().find((attachment) => attachment.clientId === 'stalled')!;
      samples.push({ retained: terminal.end - terminal.start, stalledBuffered: info.bufferedAmount });
      // Someone else's commands are served meanwhile.
      await other.request('command', { id: `other-${++commands}`, stream: 'tasks/p', type: 'task.create', payload: { title: `t${commands}` } });
    }
    expect(terminal.running).toBe(true);
    expect(commands).toBeGreaterThan(0);
    for (const sample of samples) {
      expect(sample.retained).toBeLessThanOrEqual(scrollbackBytes);
      expect(sample.stalledBuffered).toBeLessThanOrEqual(DELIVERY_DEFAULTS.highWaterBytes + CHUNK_FRAME_BYTES);
    }
    // The stalled viewer was left behind: it holds a cursor at most at the retained tail, not a copy of the output.
    const stalledInfo = test.extension.attachments().find((attachment) => attachment.clientId === 'stalled')!;
    expect(stalledInfo.cursor).toBeLessThanOrEqual(terminal.end - scrollbackBytes / 2);
    // The reading viewer got contiguous output, or explicit markers where it fell out of the scrollback.
    await waitFor(() => reading.next('endless') > 4 * scrollbackBytes, 'the reading viewer to get output');
    expect(reading.gaps).toEqual([]);

    // Once it reads again, it skips ahead with a truncation marker to what is retained.
    stalled.resume();
    await waitFor(() => stalled.outputs.some((output) => output.truncated), 'the stalled viewer to skip ahead');
    expect(stalled.gaps).toEqual([]);
    expect(test.errors).toEqual([]);
  });
});

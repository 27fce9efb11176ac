import { afterEach, describe, expect, it } from 'vitest';
import { DELIVERY_DEFAULTS } from './deliveryPolicy.js';
import { seqOutput, waitFor } from './test/helpers.js';
import { Viewer, startHub, type TestHub } from './test/wsHarness.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function hubFor(...args: Parameters<typeof startHub>): Promise<TestHub> {
  const started = await startHub(...args);
  cleanup.push(() => started.close());
  return started;
}

async function viewers(test: TestHub, count: number): Promise<Viewer[]> {
  const connected = await Promise.all(Array.from({ length: count }, (_, i) => Viewer.connect(test.url, { clientId: `viewer-${i}` })));
  cleanup.push(async () => {
    await Promise.all(connected.map((viewer) => viewer.close()));
  });
  return connected;
}

/** Printed by the scripts once they have turned echo off: input written after it is not echoed. */
const READY = 'ready\r\n';

/** A program that turns echo off, says ready, waits for a line, then writes `seq 1 n`. */
function gatedSeq(n: number) {
  return { file: '/bin/sh', args: ['-c', `stty -echo; echo ready; read go; exec seq 1 ${n}`] };
}

/** Waits until a terminal has said it is ready for input. */
async function ready(terminal: { written: number }): Promise<void> {
  await waitFor(() => terminal.written >= READY.length, 'the program to be ready');
}

/** The largest JSON frame of one chunk: 64 KiB as base64, plus the envelope. */
const CHUNK_FRAME_BYTES = Math.ceil((64 * 1024) / 3) * 4 + 200;

describe('terminal delivery', () => {
  it('20 viewers of one busy terminal: one stalls, the 19 others keep up and get every byte; the PTY never waits', async () => {
    const test = await hubFor({ scrollbackBytes: 32 * 1024 * 1024 });
    const lines = 1_500_000;
    const expected = Buffer.from(READY + seqOutput(lines));
    const terminal = await test.extension.terminals.spawn({ id: 'busy', ...gatedSeq(lines) });
    await ready(terminal);
    const all = await viewers(test, 20);
    for (const viewer of all) await viewer.attach('busy');
    const stalled = all[0]!;
    const others = all.slice(1);
    stalled.stall(); // its socket stops reading: kernel buffers fill, then the hub's send buffer

    terminal.write('go\n');
    await Promise.all(others.map((viewer) => viewer.waitForExit('busy')));
    for (const viewer of others) {
      expect(viewer.gaps).toEqual([]);
      expect(viewer.bytes('busy').equals(expected)).toBe(true);
      expect(viewer.exitsOf('busy')).toEqual([{ terminalId: 'busy', exitCode: 0 }]);
    }
    // The program ran to its end while one viewer read nothing.
    expect(terminal.exit).toEqual({ exitCode: 0 });

    // The stalled viewer costs a cursor and a bounded send buffer — not a copy of the output.
    const info = test.extension.attachments().find((attachment) => attachment.clientId === 'viewer-0')!;
    expect(info.cursor).toBeLessThan(terminal.end);
    expect(info.bufferedAmount).toBeLessThanOrEqual(DELIVERY_DEFAULTS.highWaterBytes + CHUNK_FRAME_BYTES);
    expect(info.exitSent).toBe(false);

    // Once it reads again it catches up from its cursor (everything is still in the scrollback).
    stalled.resume();
    await stalled.waitForExit('busy');
    expect(stalled.gaps).toEqual([]);
    expect(stalled.bytes('busy').equals(expected)).toBe(true);
    expect(stalled.exitsOf('busy')).toHaveLength(1);
  });

  it('a stalled viewer that falls out of the scrollback skips ahead with a truncated marker, then gets the retained tail', async () => {
    const scrollbackBytes = 256 * 1024;
    const test = await hubFor({ scrollbackBytes });
    const lines = 3_000_000;
    const expected = Buffer.from(READY + seqOutput(lines));
    const terminal = await test.extension.terminals.spawn({ id: 'flood', ...gatedSeq(lines) });
    await ready(terminal);
    const [viewer] = await viewers(test, 1);
    await viewer!.attach('flood');
    viewer!.stall();
    terminal.write('go\n');
    await terminal.exited;
    viewer!.resume();
    await viewer!.waitForExit('flood');

    expect(viewer!.gaps).toEqual([]);
    const markers = viewer!.outputs.filter((output) => output.truncated);
    expect(markers.length).toBeGreaterThanOrEqual(1);
    const info = test.extension.attachments()[0]!;
    // Everything before the first marker arrived contiguously from 0; everything after the last
    // marker is the tail, contiguous up to the end.
    const before = viewer!.outputs.slice(0, viewer!.outputs.indexOf(markers[0]!));
    const head = Buffer.concat(before.map((output) => Buffer.from(output.data, 'base64')));
    expect(head.equals(expected.subarray(0, head.length))).toBe(true);
    const last = markers.at(-1)!;
    const tail = Buffer.concat(viewer!.outputs.slice(viewer!.outputs.indexOf(last)).map((output) => Buffer.from(output.data, 'base64')));
    expect(last.offset + tail.length).toBe(expected.length);
    expect(tail.equals(expected.subarray(last.offset))).toBe(true);
    expect(tail.length).toBeGreaterThanOrEqual(scrollbackBytes - CHUNK_FRAME_BYTES);
    // What it did not receive is exactly what it was told it skipped.
    expect(info.skippedBytes).toBe(expected.length - viewer!.bytes('flood').length);
    expect(viewer!.exitsOf('flood')).toHaveLength(1);
  });

  it('focused sessions stream live; unfocused ones are paused and catch up from their offset when focused', async () => {
    const test = await hubFor({ deliveryPolicy: { unfocused: 'pause' } });
    // Waits for a line, answers it with 1,000 lines, forever.
    const script = 'stty -echo; echo ready; while read line; do seq 1 1000; done';
    const a = await test.extension.terminals.spawn({ id: 'term_a', project: 'proj', file: '/bin/sh', args: ['-c', script] });
    const b = await test.extension.terminals.spawn({ id: 'term_b', project: 'proj', file: '/bin/sh', args: ['-c', script] });
    await ready(a);
    await ready(b);
    const focus = (type: string, payload: unknown, id: string) => test.hub.execute({ id, stream: 'focus/proj', type, payload });
    await focus('focus.set', { sessionId: 'term_b' }, 'f1');

    const [viewer] = await viewers(test, 1);
    await viewer!.attach('term_a');
    await viewer!.attach('term_b');
    const modes = () => Object.fromEntries(test.extension.attachments().map((info) => [info.terminalId, info.mode]));
    expect(modes()).toEqual({ term_a: 'pause', term_b: 'live' });

    const batch = seqOutput(1000);
    a.write('\n');
    b.write('\n');
    await waitFor(() => a.end === READY.length + batch.length && b.end === READY.length + batch.length, 'both terminals to answer');
    await viewer!.waitForBytes('term_b', READY.length + batch.length);
    // term_a's output is held: its attachment's cursor has not moved.
    expect(test.extension.attachments().find((info) => info.terminalId === 'term_a')?.cursor).toBe(0);
    expect(viewer!.bytes('term_a').length).toBe(0);

    // Another client focuses term_a (grid of two): its viewer catches up from offset 0 at once.
    await focus('focus.setMany', { sessionIds: ['term_a', 'term_b'] }, 'f2');
    await viewer!.waitForBytes('term_a', READY.length + batch.length);
    expect(viewer!.text('term_a')).toBe(READY + batch);
    expect(modes()).toEqual({ term_a: 'live', term_b: 'live' });

    // Blurred again: paused; more output waits, then arrives when focused once more.
    await focus('focus.blur', { sessionId: 'term_a' }, 'f3');
    await waitFor(() => modes()['term_a'] === 'pause', 'term_a to pause');
    a.write('\n');
    await waitFor(() => a.end === READY.length + 2 * batch.length, 'term_a to answer again');
    expect(test.extension.attachments().find((info) => info.terminalId === 'term_a')?.cursor).toBe(READY.length + batch.length);
    await focus('focus.set', { sessionId: 'term_a' }, 'f4');
    await viewer!.waitForBytes('term_a', READY.length + 2 * batch.length);
    expect(viewer!.text('term_a')).toBe(READY + batch + batch);
    expect(viewer!.gaps).toEqual([]);

    // A terminal that exits gives up its focus (no ghost entries in the focus set).
    await test.extension.terminals.remove('term_a');
    await waitFor(() => !(test.hub.stream('focus/proj').state as { focused: string[] }).focused.includes('term_a'), 'term_a to lose focus');
  });

  it('unfocused sessions are throttled by default and still receive every byte', async () => {
    const test = await hubFor({ deliveryPolicy: { unfocused: { throttleMs: 50 } } });
    const terminal = await test.extension.terminals.spawn({ id: 'slow', project: 'proj', file: 'seq', args: ['1', '30000'] });
    const [viewer] = await viewers(test, 1);
    await viewer!.attach('slow');
    expect(test.extension.attachments()[0]?.mode).toBe('throttle(50)');
    await viewer!.waitForExit('slow');
    expect(viewer!.text('slow')).toBe(seqOutput(30_000));
    expect(terminal.exit).toEqual({ exitCode: 0 });
  });
});

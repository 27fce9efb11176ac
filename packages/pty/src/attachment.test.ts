import type { AnyServiceNotification } from '@lockstep/core';
import type { AttachmentPeer } from './attachment.js';
import { FakeClock } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';
import { Attachment } from './attachment.js';
import type { DeliveryMode } from './deliveryPolicy.js';
import { Emitter } from './emitter.js';
import type { ExitNotification, OutputNotification } from './protocol.js';
import { Scrollback } from './scrollback.js';
import type { ExitInfo, OutputRange, TerminalSource } from './terminal.js';

/** A terminal whose output the test writes, with the scrollback of a real one. */
class FakeTerminal implements TerminalSource {
  readonly id = 'term_1';
  readonly runId = 'run1';
  readonly project = undefined;
  cols = 80;
  rows = 24;
  exit: ExitInfo | undefined;
  readonly #ring: Scrollback;
  readonly #output = new Emitter<OutputRange>(fail);
  readonly #exit = new Emitter<ExitInfo>(fail);
  readonly #resize = new Emitter<{ cols: number; rows: number }>(fail);
  readonly #dispose = new Emitter<void>(fail);

  constructor(capacity: number) {
    this.#ring = new Scrollback(capacity);
  }

  get start() {
    return this.#ring.start;
  }
  get end() {
    return this.#ring.end;
  }
  readBase64(from: number, to: number) {
    return this.#ring.readBase64(from, to);
  }
  onOutput(listener: (range: OutputRange) => void) {
    return this.#output.on(listener);
  }
  onExit(listener: (exit: ExitInfo) => void) {
    return this.#exit.on(listener);
  }
  onResize(listener: (size: { cols: number; rows: number }) => void) {
    return this.#resize.on(listener);
  }
  onDispose(listener: () => void) {
    return this.#dispose.on(listener);
  }

  write(bytes: Buffer): void {
    const from = this.#ring.end;
    this.#ring.write(bytes);
    this.#output.emit({ from, to: this.#ring.end });
  }

  exitWith(exit: ExitInfo): void {
    this.exit = exit;
    this.#exit.emit(exit);
  }

  dispose(): void {
    this.#dispose.emit();
  }
}

function fail(error: unknown): never {
  throw error;
}

/** A connection as an extension sees it, with a buffer the test fills and drains. */
function fakeSession() {
  const sent: Array<{ method: string; params: unknown }> = [];
  const session = {
    sessionId: 's1',
    clientId: 'c1',
    bufferedAmount: 0 as number,
    closed: false as boolean,
    notify(notification: AnyServiceNotification, params: unknown) {
      if (session.closed) return false;
      sent.push({ method: notification.method, params });
      return true;
    },
  } satisfies AttachmentPeer & { bufferedAmount: number; closed: boolean };
  const outputs = () => sent.filter((m) => m.method === 'terminal.output').map((m) => m.params as OutputNotification);
  const exits = () => sent.filter((m) => m.method === 'terminal.exit').map((m) => m.params as ExitNotification);
  /** The bytes received, checked to be contiguous except where marked truncated. */
  const received = () => {
    const chunks: Buffer[] = [];
    let next: number | undefined;
    for (const output of outputs()) {
      if (next !== undefined && !output.truncated) expect(output.offset).toBe(next);
      if (output.truncated) expect(output.offset).toBeGreaterThan(next ?? -1);
      const data = Buffer.from(output.data, 'base64');
      chunks.push(data);
      next = output.offset + data.length;
    }
    return Buffer.concat(chunks);
  };
  return { session, sent, outputs, exits, received };
}

/** The bytes at offsets `[from, from + length)` of a known sequence. */
function bytes(from: number, length: number): Buffer {
  const buffer = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buffer[i] = (from + i) % 251;
  return buffer;
}

function setup(options: { capacity?: number; mode?: DeliveryMode; chunkBytes?: number; highWaterBytes?: number; maxLagBytes?: number; from?: number } = {}) {
  const clock = new FakeClock();
  const terminal = new FakeTerminal(options.capacity ?? 1 << 20);
  const peer = fakeSession();
  const gone: Attachment[] = [];
  const settings = {
    chunkBytes: options.chunkBytes ?? 1000,
    highWaterBytes: options.highWaterBytes ?? 10_000,
    drainCheckMs: 16,
    maxLagBytes: options.maxLagBytes,
    clock,
  };
  const attachment = new Attachment(terminal, peer.session, options.from ?? 0, options.mode ?? 'live', settings, (a) => gone.push(a));
  let written = 0;
  const write = (length: number) => {
    terminal.write(bytes(written, length));
    written += length;
  };
  return { clock, terminal, peer, attachment, gone, write, written: () => written };
}

describe('Attachment (one viewer of one terminal)', () => {
  it('sends nothing before start, then live output contiguously, in chunks of at most chunkBytes', () => {
    const { attachment, peer, write } = setup({ chunkBytes: 1000 });
    write(500);
    expect(peer.sent).toEqual([]);
    attachment.start();
    write(2500);
    write(10);
    expect(peer.outputs().map((o) => [o.offset, Buffer.from(o.data, 'base64').length])).toEqual([
      [0, 500],
      [500, 1000],
      [1500, 1000],
      [2500, 500],
      [3000, 10],
    ]);
    expect(peer.received().equals(bytes(0, 3010))).toBe(true);
  });

  it('holds back while the connection is over the high-water mark, then catches up from its cursor', async () => {
    const { attachment, peer, write, clock } = setup({ highWaterBytes: 5000 });
    attachment.start();
    write(100);
    peer.session.bufferedAmount = 6000;
    for (let i = 0; i < 30; i++) write(100);
    expect(peer.outputs()).toHaveLength(1);
    expect(attachment.cursor).toBe(100);
    await clock.advance(100);
    expect(peer.outputs()).toHaveLength(1); // still not drained
    peer.session.bufferedAmount = 0;
    await clock.advance(16);
    // 3,000 bytes coalesced into three chunks of 1,000 instead of thirty of 100.
    expect(peer.outputs()).toHaveLength(4);
    expect(peer.received().equals(bytes(0, 3100))).toBe(true);
  });

  it('skips ahead with a truncated marker when the scrollback moved past a held-back viewer', async () => {
    const { attachment, peer, write, clock, terminal } = setup({ capacity: 2000, highWaterBytes: 5000 });
    attachment.start();
    write(700);
    peer.session.bufferedAmount = 1_000_000; // stalled
    for (let i = 0; i < 50; i++) write(100); // 5,000 more bytes: the scrollback keeps the last 2,000
    peer.session.bufferedAmount = 0;
    await clock.advance(16);
    const outputs = peer.outputs();
    expect(outputs[0]).toMatchObject({ offset: 0 });
    expect(outputs[0]!.truncated).toBeUndefined();
    expect(outputs[1]).toMatchObject({ offset: terminal.start, truncated: true });
    expect(outputs.slice(2).every((o) => o.truncated === undefined)).toBe(true);
    expect(attachment.info().skippedBytes).toBe(terminal.start - 700);
    // Exactly the retained tail, contiguous, after the marker.
    const tail = Buffer.concat(outputs.slice(1).map((o) => Buffer.from(o.data, 'base64')));
    expect(tail.equals(bytes(terminal.start, 2000))).toBe(true);
  });

  it('skips ahead to the last maxLagBytes when a viewer falls further behind than that', async () => {
    const { attachment, peer, write, clock } = setup({ maxLagBytes: 1500, highWaterBytes: 5000 });
    attachment.start();
    peer.session.bufferedAmount = 1_000_000;
    write(4000);
    peer.session.bufferedAmount = 0;
    await clock.advance(16);
    expect(peer.outputs()[0]).toMatchObject({ offset: 2500, truncated: true });
    expect(peer.received().equals(bytes(2500, 1500))).toBe(true);
  });

  it('pauses, then catches up from its offset when the mode changes', () => {
    const { attachment, peer, write } = setup({ mode: 'pause' });
    attachment.start();
    write(3000);
    expect(peer.sent).toEqual([]);
    attachment.setMode('live');
    expect(peer.received().equals(bytes(0, 3000))).toBe(true);
    write(5);
    expect(peer.received().equals(bytes(0, 3005))).toBe(true);
  });

  it('a paused viewer whose program exits gets the rest, then the exit once', () => {
    const { attachment, peer, write, terminal } = setup({ mode: 'pause' });
    attachment.start();
    write(2500);
    terminal.exitWith({ exitCode: 3 });
    attachment.pump();
    attachment.pump();
    expect(peer.received().equals(bytes(0, 2500))).toBe(true);
    expect(peer.exits()).toEqual([{ terminalId: 'term_1', exitCode: 3 }]);
    expect(peer.sent.at(-1)?.method).toBe('terminal.exit');
  });

  it('a throttled viewer whose program exits within the interval gets the rest and the exit at once, before the terminal is disposed', () => {
    const { attachment, peer, write, terminal, gone } = setup({ mode: { throttleMs: 100 } });
    attachment.start();
    write(10);
    // Within the throttle interval of that first burst: held back for later.
    write(20);
    expect(peer.received().equals(bytes(0, 10))).toBe(true);
    terminal.exitWith({ exitCode: 129 });
    terminal.dispose();
    expect(peer.received().equals(bytes(0, 30))).toBe(true);
    expect(peer.exits()).toEqual([{ terminalId: 'term_1', exitCode: 129 }]);
    expect(gone).toEqual([attachment]);
  });

  it('throttled: at most one burst per interval, each carrying everything new', async () => {
    const { attachment, peer, write, clock } = setup({ mode: { throttleMs: 100 }, chunkBytes: 100_000 });
    attachment.start();
    for (let i = 0; i < 50; i++) {
      write(10);
      await clock.advance(10);
    }
    await clock.advance(100);
    // 500 ms of output every 10 ms: about five bursts, not fifty.
    const outputs = peer.outputs();
    expect(outputs.length).toBeGreaterThanOrEqual(5);
    expect(outputs.length).toBeLessThanOrEqual(7);
    expect(peer.received().equals(bytes(0, 500))).toBe(true);
  });

  it('sends the exit after the last output, once, even while held back first', async () => {
    const { attachment, peer, write, terminal, clock } = setup({ highWaterBytes: 5000 });
    attachment.start();
    peer.session.bufferedAmount = 9999;
    write(2000);
    terminal.exitWith({ exitCode: 0, signal: 'SIGTERM' });
    expect(peer.exits()).toEqual([]);
    peer.session.bufferedAmount = 0;
    await clock.advance(50);
    attachment.pump();
    expect(peer.received().equals(bytes(0, 2000))).toBe(true);
    expect(peer.exits()).toEqual([{ terminalId: 'term_1', exitCode: 0, signal: 'SIGTERM' }]);
    expect(peer.sent.at(-1)?.method).toBe('terminal.exit');
  });

  it('a viewer held back by the high-water mark gets the rest and the exit when its exited terminal is disposed', () => {
    const { attachment, peer, write, terminal, gone } = setup({ highWaterBytes: 5000 });
    attachment.start();
    write(1000);
    peer.session.bufferedAmount = 9999;
    write(2000);
    terminal.exitWith({ exitCode: 2 });
    expect(peer.received().equals(bytes(0, 1000))).toBe(true);
    expect(peer.exits()).toEqual([]);
    // Removed right after exiting, before the connection drained.
    terminal.dispose();
    expect(peer.received().equals(bytes(0, 3000))).toBe(true);
    expect(peer.exits()).toEqual([{ terminalId: 'term_1', exitCode: 2 }]);
    expect(peer.sent.at(-1)?.method).toBe('terminal.exit');
    expect(gone).toEqual([attachment]);
  });

  it('a viewer of a terminal disposed while still running gets no more output', () => {
    const { attachment, peer, write, terminal } = setup({ highWaterBytes: 5000 });
    attachment.start();
    peer.session.bufferedAmount = 9999;
    write(2000);
    terminal.dispose();
    expect(peer.sent).toEqual([]);
    expect(attachment.closed).toBe(true);
  });

  it('closes when its connection is gone or its terminal is disposed', () => {
    const first = setup();
    first.attachment.start();
    first.peer.session.closed = true;
    first.write(10);
    expect(first.attachment.closed).toBe(true);
    expect(first.gone).toEqual([first.attachment]);

    const second = setup();
    second.attachment.start();
    second.terminal.dispose();
    expect(second.attachment.closed).toBe(true);
    second.write(10);
    expect(second.peer.sent).toEqual([]);
  });
});

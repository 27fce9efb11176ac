import { setImmediate as macrotask } from 'node:timers/promises';
import type { Frame, Transport, TransportState } from '@lockstep/core';
import { filter, firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { suiteRunner, type SuiteRunner, type TestRunnerAdapter } from './runner.js';

/** Two connected ends of one transport, as the conformance suite needs them. */
export interface TransportPair {
  client: Transport;
  server: Transport;
  /** Releases what the factory opened (servers, sockets, child processes). Runs after each case. */
  dispose?(): Promise<void> | void;
}

/**
 * Makes a fresh connected pair for one case. For network transports the server end may only exist
 * once the client has connected: resolve when both ends exist (the client may still be `connecting`).
 */
export type TransportPairFactory = () => Promise<TransportPair> | TransportPair;

export interface TransportConformanceOptions {
  /**
   * Whether the transport carries binary (`Uint8Array`) frames. Default true, as `Frame` includes
   * them; a text-only transport (stdio with JSON) sets false and its binary cases are reported as
   * left out (see `caseIf`).
   */
  binary?: boolean;
  /**
   * Whether frames arrive in the order they were sent. Default true. When false, the order cases
   * only check that every frame arrives, and the close-after-frames case is left out.
   */
  ordered?: boolean;
  /** Size of the large-frame cases, in bytes. Default {@link DEFAULT_LARGE_FRAME_BYTES}. */
  largeFrameBytes?: number;
  /** Timeout of each case in milliseconds. Default: the vitest configuration's. */
  timeoutMs?: number;
  /** The test runner's functions (see {@link TestRunnerAdapter}). Default: vitest's. */
  runner?: TestRunnerAdapter;
}

export const DEFAULT_LARGE_FRAME_BYTES = 512 * 1024;
const SEQUENCE_LENGTH = 1_000;
const BURST_LENGTH = 10_000;

type Side = 'client' | 'server';
interface Direction {
  label: string;
  from: Side;
  to: Side;
}
const directions: Direction[] = [
  { label: 'client to server', from: 'client', to: 'server' },
  { label: 'server to client', from: 'server', to: 'client' },
];

/**
 * Declares a vitest suite that checks a {@link Transport} implementation against the contract in
 * `transport.ts`: ordered delivery both ways, text and binary frames, large frames and bursts, and
 * the lifecycle (`open`, exactly one `closed`, replay to late subscribers, close propagation,
 * `send` after close). Cases wait for conditions and never assert on timing.
 *
 * ```ts
 * describeTransportConformance('ws transport', async () => {
 *   const client = connectWs(url);
 *   const server = await nextAcceptedTransport();
 *   return { client, server, dispose: () => wss.close() };
 * });
 * ```
 */
export function describeTransportConformance(name: string, factory: TransportPairFactory, options: TransportConformanceOptions = {}): void {
  const binary = options.binary ?? true;
  const ordered = options.ordered ?? true;
  const { describe, it, expect, onFinished, caseIf } = suiteRunner(options.runner);
  const ifBinary = caseIf(binary);
  const ifOrdered = caseIf(ordered);
  const largeFrameBytes = options.largeFrameBytes ?? DEFAULT_LARGE_FRAME_BYTES;
  const suiteOptions = options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs };
  const expectOpen = (end: Transport) => expectOpenWith(expect, end);
  const expectBytes = (actual: Frame | undefined, expected: Uint8Array) => expectBytesWith(expect, actual, expected);

  /** A fresh pair, closed and disposed when the case finishes. */
  async function connect(): Promise<TransportPair> {
    const pair = await factory();
    onFinished(async () => {
      pair.client.close('test finished');
      pair.server.close('test finished');
      await pair.dispose?.();
    });
    return pair;
  }

  /** A fresh pair with both ends open. */
  async function connectOpen(): Promise<TransportPair> {
    const pair = await connect();
    await Promise.all([expectOpen(pair.client), expectOpen(pair.server)]);
    return pair;
  }

  /** Checks frames arrived as sent: in order when the transport is ordered, all of them otherwise. */
  function expectDelivered(received: readonly string[], sent: readonly string[]): void {
    expect(received.length, 'number of frames received').toBe(sent.length);
    if (ordered) expect(received).toEqual(sent);
    else expect([...received].sort()).toEqual([...sent].sort());
  }

  describe(name, suiteOptions, () => {
    describe('state', () => {
      it('replays the current state to every new subscriber', async () => {
        const pair = await connectOpen();
        for (const end of [pair.client, pair.server]) {
          // Each subscription must get the current state at once, not wait for the next change.
          const seen: TransportState[] = [];
          end.state.subscribe((state) => seen.push(state)).unsubscribe();
          expect(seen).toEqual([{ status: 'open' }]);
          expect(await firstValueFrom(end.state)).toEqual({ status: 'open' });
        }
      });

      it('reaches open once, then exactly one closed', async () => {
        const pair = await connect();
        const recorded = { client: record(pair.client), server: record(pair.server) };
        await Promise.all([expectOpen(pair.client), expectOpen(pair.server)]);
        pair.client.close('done');
        await Promise.all([closedState(pair.client), closedState(pair.server)]);
        pair.client.close('again');
        pair.server.close('again');
        await settle();
        for (const side of ['client', 'server'] as const) {
          const statuses = recorded[side].map((state) => state.status);
          // Any number of `connecting` first (the recording may start before the connection is up).
          const connected = statuses.slice(statuses.findIndex((status) => status !== 'connecting'));
          expect(connected, `${side} states`).toEqual(['open', 'closed']);
        }
      });

      it.each(directions)('replays closed, with its reason, to a subscriber that comes after the close ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        pair[from].close('closed by the test');
        await closedState(pair[to]);
        for (const end of [pair[from], pair[to]]) {
          const state = await firstValueFrom(end.state);
          expect(state.status).toBe('closed');
          if (state.status === 'closed') expect(typeof state.reason).toBe('string');
        }
        // The end that closed knows why: it was told.
        expect(await firstValueFrom(pair[from].state)).toMatchObject({ status: 'closed', reason: 'closed by the test' });
      });
    });

    describe('frames', () => {
      it.each(directions)(`carries ${SEQUENCE_LENGTH.toLocaleString('en')} numbered frames${ordered ? ' in order' : ''} ($label)`, async ({ from, to }) => {
        const pair = await connectOpen();
        const sent = sequence('frame', SEQUENCE_LENGTH);
        const arriving = receive(pair[to], sent.length);
        for (const frame of sent) expect(pair[from].send(frame)).toBe(true);
        expectDelivered(asText(await arriving), sent);
      });

      it('carries frames both ways at once', async () => {
        const pair = await connectOpen();
        const up = sequence('up', SEQUENCE_LENGTH);
        const down = sequence('down', SEQUENCE_LENGTH);
        const atServer = receive(pair.server, up.length);
        const atClient = receive(pair.client, down.length);
        for (let i = 0; i < SEQUENCE_LENGTH; i++) {
          pair.client.send(up[i]!);
          pair.server.send(down[i]!);
        }
        expectDelivered(asText(await atServer), up);
        expectDelivered(asText(await atClient), down);
      });

      it.each(directions)('carries text frames unchanged, as strings ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        const sent = [
          '{"jsonrpc":"2.0","method":"ping","params":{}}',
          'ünïcödé — 日本語 — 🚀👩‍💻 — \u{10FFFF}',
          'line one\nline two\r\n\r\nContent-Length: 12\r\n\r\n',
          ' leading and trailing spaces ',
          '\u0000\u0001\u001f',
          'x',
        ];
        const arriving = receive(pair[to], sent.length);
        for (const frame of sent) pair[from].send(frame);
        const received = await arriving;
        for (const frame of received) expect(typeof frame).toBe('string');
        expectDelivered(asText(received), sent);
      });

      ifBinary.each(directions)('carries binary frames as Uint8Array with the same bytes ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        const sent = [allByteValues(), Uint8Array.of(0), Uint8Array.of(0xff, 0xfe, 0xfd), patternBytes(4_096, 7)];
        const arriving = receive(pair[to], sent.length);
        for (const frame of sent) pair[from].send(frame);
        const received = await arriving;
        expect(received).toHaveLength(sent.length);
        const sentOrder = ordered ? sent : [...sent].sort(byLength);
        const receivedOrder = ordered ? received : [...received].sort(byLength);
        sentOrder.forEach((bytes, i) => expectBytes(receivedOrder[i], bytes));
      });

      ifBinary.each(directions)('sends only the bytes a Uint8Array view covers ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        const whole = patternBytes(1_024, 3);
        const view = whole.subarray(100, 300);
        const arriving = receive(pair[to], 1);
        pair[from].send(view);
        const [frame] = await arriving;
        expectBytes(frame, whole.slice(100, 300));
      });

      ifBinary.each(directions)('keeps text and binary frames apart in a mixed sequence ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        const sent: Frame[] = [];
        for (let i = 0; i < 200; i++) sent.push(i % 2 === 0 ? `text ${i}` : Uint8Array.of(i & 0xff, (i >> 8) & 0xff));
        const arriving = receive(pair[to], sent.length);
        for (const frame of sent) pair[from].send(frame);
        const received = await arriving;
        expect(received).toHaveLength(sent.length);
        const key = (frame: Frame | undefined) =>
          typeof frame === 'string' ? `s:${frame}` : frame instanceof Uint8Array ? `b:${Array.from(frame).join(',')}` : `?:${String(frame)}`;
        expectDelivered(received.map(key), sent.map(key));
      });

      it.each(directions)(`carries a large text frame intact ($label)`, async ({ from, to }) => {
        const pair = await connectOpen();
        const sent = largeText(largeFrameBytes);
        const arriving = receive(pair[to], 1);
        expect(pair[from].send(sent)).toBe(true);
        const [frame] = await arriving;
        expect(typeof frame).toBe('string');
        const text = frame as string;
        expect(text.length, 'length of the large frame').toBe(sent.length);
        expect(firstTextDifference(text, sent), 'index of the first differing character').toBe(-1);
      });

      ifBinary.each(directions)('carries a large binary frame intact ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        const sent = patternBytes(largeFrameBytes, 11);
        const arriving = receive(pair[to], 1);
        expect(pair[from].send(sent)).toBe(true);
        const [frame] = await arriving;
        expectBytes(frame, sent);
      });

      it.each(directions)(`delivers every frame of a synchronous burst of ${BURST_LENGTH.toLocaleString('en')} ($label)`, async ({ from, to }) => {
        const pair = await connectOpen();
        const sent = sequence('b', BURST_LENGTH);
        const arriving = receive(pair[to], sent.length);
        let accepted = 0;
        for (const frame of sent) if (pair[from].send(frame)) accepted++;
        expect(accepted).toBe(sent.length);
        expectDelivered(asText(await arriving), sent);
      });
    });

    describe('close', () => {
      it.each(directions)('close() on one end closes the other, with a reason ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        pair[from].close('closed by the test');
        const local = await closedState(pair[from]);
        const remote = await closedState(pair[to]);
        expect(local.reason).toBe('closed by the test');
        expect(typeof remote.reason).toBe('string');
      });

      it.each(directions)('frames completes on both ends ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        const completed = [pair[from], pair[to]].map((end) => lastValueFrom(end.frames.pipe(toArray())));
        pair[from].close('closed by the test');
        await Promise.all(completed);
        // A subscription made after the close completes too, instead of waiting forever.
        for (const end of [pair.client, pair.server]) expect(await lastValueFrom(end.frames.pipe(toArray()))).toEqual([]);
      });

      it.each(directions)('send after close returns false and does not throw ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        pair[from].close('closed by the test');
        expect(pair[from].send('after close')).toBe(false);
        await closedState(pair[to]);
        expect(pair[to].send('after the peer closed')).toBe(false);
        if (binary) {
          expect(pair[from].send(Uint8Array.of(1))).toBe(false);
          expect(pair[to].send(Uint8Array.of(1))).toBe(false);
        }
      });

      it('close() is idempotent on both ends', async () => {
        const pair = await connectOpen();
        const recorded = { client: record(pair.client), server: record(pair.server) };
        pair.client.close('first');
        pair.client.close('second');
        await closedState(pair.server);
        pair.server.close('third');
        pair.server.close();
        pair.client.close();
        await settle();
        for (const side of ['client', 'server'] as const) {
          expect(
            recorded[side].filter((state) => state.status === 'closed'),
            `${side} closed states`,
          ).toHaveLength(1);
        }
        expect(await closedState(pair.client)).toMatchObject({ reason: 'first' });
      });

      it('closing both ends at once closes each exactly once', async () => {
        const pair = await connectOpen();
        const recorded = { client: record(pair.client), server: record(pair.server) };
        pair.client.close('client side');
        pair.server.close('server side');
        await Promise.all([closedState(pair.client), closedState(pair.server)]);
        await settle();
        for (const side of ['client', 'server'] as const) {
          expect(
            recorded[side].filter((state) => state.status === 'closed'),
            `${side} closed states`,
          ).toHaveLength(1);
        }
      });

      ifOrdered.each(directions)('delivers frames sent before close() ahead of the close ($label)', async ({ from, to }) => {
        const pair = await connectOpen();
        const sent = sequence('last words', 100);
        const everything = lastValueFrom(pair[to].frames.pipe(toArray()));
        for (const frame of sent) pair[from].send(frame);
        pair[from].close('closed by the test');
        expect(asText(await everything)).toEqual(sent);
      });
    });
  });
}

async function expectOpenWith(expect: SuiteRunner['expect'], end: Transport): Promise<void> {
  const state = await firstValueFrom(end.state.pipe(filter((s) => s.status !== 'connecting')));
  expect(state).toEqual({ status: 'open' });
}

/** Resolves with the `closed` state; a late subscriber must get it replayed. */
async function closedState(end: Transport): Promise<Extract<TransportState, { status: 'closed' }>> {
  const state = await firstValueFrom(end.state.pipe(filter((s) => s.status === 'closed')));
  return state;
}

/** Every state an end goes through from now on. */
function record(end: Transport): TransportState[] {
  const states: TransportState[] = [];
  end.state.subscribe((state) => states.push(state));
  return states;
}

/** Resolves with the next `count` frames, or fewer if `frames` completes first. Subscribes now. */
function receive(end: Transport, count: number): Promise<Frame[]> {
  return firstValueFrom(end.frames.pipe(take(count), toArray()));
}

/** Lets late, unwanted events (a second `closed`) surface before the case checks for them. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await macrotask();
}

function sequence(prefix: string, length: number): string[] {
  return Array.from({ length }, (_, i) => `${prefix} ${i}`);
}

function asText(frames: readonly Frame[]): string[] {
  return frames.map((frame) => (typeof frame === 'string' ? frame : `<binary frame of ${frame.byteLength} bytes>`));
}

function allByteValues(): Uint8Array {
  return Uint8Array.from({ length: 256 }, (_, i) => i);
}

/** Bytes that differ from their neighbours, so shifted or truncated data is caught. */
function patternBytes(length: number, salt: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + salt + (i >>> 8)) & 0xff;
  return bytes;
}

/** About `bytes` bytes of UTF-8, numbered throughout and with some multi-byte characters. */
function largeText(bytes: number): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const part = i % 64 === 0 ? `[${i}:é日🚀]` : `[${i}]`;
    parts.push(part);
    size += part.length;
  }
  return parts.join('');
}

function firstTextDifference(actual: string, expected: string): number {
  const length = Math.min(actual.length, expected.length);
  for (let i = 0; i < length; i++) if (actual.charCodeAt(i) !== expected.charCodeAt(i)) return i;
  return actual.length === expected.length ? -1 : length;
}

/** Compares bytes without dumping megabytes into a failure message. */
function expectBytesWith(expect: SuiteRunner['expect'], actual: Frame | undefined, expected: Uint8Array): void {
  expect(actual, 'a binary frame').toBeInstanceOf(Uint8Array);
  const bytes = actual as Uint8Array;
  expect(bytes.byteLength, 'frame length in bytes').toBe(expected.byteLength);
  let difference = -1;
  for (let i = 0; i < expected.byteLength; i++) {
    if (bytes[i] !== expected[i]) {
      difference = i;
      break;
    }
  }
  expect(difference, 'index of the first differing byte').toBe(-1);
}

function byLength(a: Frame, b: Frame): number {
  return a.length - b.length;
}

/**
 * The entry of the browser bundle that wsBrowser.test.ts builds with esbuild: @lockstep/client over
 * @lockstep/ws in a real page, driven through `globalThis.lockstepPage` by `page.evaluate`.
 * It imports nothing from Node: the build checks that.
 */
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { createRandom, type AnyDomain } from '@lockstep/core';
import { webSocketConnector } from '@lockstep/ws';
import { builtInScenario } from './builtInScenario.js';

export interface PageApi {
  start(url: string, seed: number): void;
  /** Dispatches `count` random commands, each after the previous one's optimistic update. */
  run(count: number): Promise<{ dispatched: number; acknowledged: number; rejected: number }>;
  whenIdle(): Promise<void>;
  /** Per stream: the confirmed state and version, and the state the UI sees. */
  streams(): Record<string, { state: unknown; version: number; view: unknown }>;
  status(): string;
  /** Every status the client went through, without repeats. */
  statuses(): string[];
  close(): void;
}

let client: LockstepClient | undefined;
let streams: Array<SyncedStream<AnyDomain>> = [];
let random = createRandom(1);
const statuses: string[] = [];
const settled: Array<Promise<unknown>> = [];

const api: PageApi = {
  start(url, seed) {
    random = createRandom(seed);
    client = createClient({
      connect: webSocketConnector(url),
      clientId: 'browser-page',
      random: createRandom(seed + 1),
      backoff: { initialMs: 20, maxMs: 200 },
    });
    streams = builtInScenario.streams.map(({ domain, key }) => client!.stream(domain, key));
    client.status$.subscribe(({ status }) => {
      if (statuses.at(-1) !== status) statuses.push(status);
    });
  },
  async run(count) {
    let acknowledged = 0;
    let rejected = 0;
    for (let i = 0; i < count; i++) {
      const stream = random.pick(streams);
      const spec = builtInScenario.streams.find(({ domain, key }) => `${domain.name}/${key}` === stream.name)!;
      const command = builtInScenario.nextCommand(random, spec, stream.getSnapshot());
      const done = stream.dispatch(command as never).then(
        () => acknowledged++,
        () => rejected++,
      );
      settled.push(done);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await Promise.all(settled);
    return { dispatched: count, acknowledged, rejected };
  },
  whenIdle: () => client!.whenIdle(),
  streams() {
    const out: Record<string, { state: unknown; version: number; view: unknown }> = {};
    for (const stream of streams) out[stream.name] = { ...stream.confirmed, view: stream.getSnapshot() };
    return JSON.parse(JSON.stringify(out)) as typeof out;
  },
  status: () => client?.status.status ?? 'not started',
  statuses: () => [...statuses],
  close: () => client?.close(),
};

(globalThis as unknown as { lockstepPage: PageApi }).lockstepPage = api;

/**
 * The entry of the browser bundle that crossTabBrowser.test.ts builds: a client whose connection is
 * shared between the tabs of the origin (`@lockstep/client/cross-tab`), driven through
 * `globalThis.lockstepTabs` by `page.evaluate`.
 */
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { crossTabConnection, type CrossTabConnection } from '@lockstep/client/cross-tab';
import { webSocketConnector } from '@lockstep/ws';
import { taggedCounter } from './counterDomain.js';

export interface CrossTabPageApi {
  start(url: string): Promise<void>;
  isLeader(): boolean;
  /** `Date.now()` when this tab took the lead (undefined: it never did). */
  leaderSince(): number | undefined;
  dispatch(prefix: string, count: number): void;
  view(): { status: string; pending: number; confirmed: { state: { n: number; tags: string[] }; version: number } };
  whenIdle(): Promise<void>;
}

let client: LockstepClient | undefined;
let tabs: CrossTabConnection | undefined;
let stream: SyncedStream<typeof taggedCounter> | undefined;
let since: number | undefined;

const api: CrossTabPageApi = {
  async start(url) {
    tabs = crossTabConnection({ connect: webSocketConnector(url), domains: [taggedCounter], name: 'test' });
    tabs.leader$.subscribe((leads) => {
      if (leads && since === undefined) since = Date.now();
    });
    client = createClient({ connect: tabs.connect, backoff: { initialMs: 20, maxMs: 100 } });
    tabs.serve(client);
    stream = client.stream(taggedCounter, 'shared');
    await client.whenIdle();
  },
  isLeader: () => tabs!.isLeader,
  leaderSince: () => since,
  dispatch(prefix, count) {
    for (let i = 0; i < count; i++) stream!.dispatch({ type: 'add', payload: { by: 1, tag: `${prefix}${i}` } }).catch(() => {});
  },
  view: () =>
    JSON.parse(JSON.stringify({ status: client!.status.status, pending: stream!.getStatus().pending, confirmed: stream!.confirmed })) as ReturnType<
      CrossTabPageApi['view']
    >,
  whenIdle: () => client!.whenIdle(),
};

(globalThis as unknown as { lockstepTabs: CrossTabPageApi }).lockstepTabs = api;

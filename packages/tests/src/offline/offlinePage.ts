/**
 * The entry of the browser bundle that offlineBrowser.test.ts builds: a persistent client
 * (IndexedDB) in a real page, driven through `globalThis.lockstepOffline` by `page.evaluate`.
 * It imports nothing from Node: the build checks that.
 */
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { indexedDbStorage } from '@lockstep/client/persist-indexeddb';
import { webSocketConnector } from '@lockstep/ws';
import { taggedCounter } from './counterDomain.js';

export interface OfflinePageApi {
  /** Creates the client on IndexedDB database `database`, waits for what it restored, and opens the stream. */
  start(url: string, database: string): Promise<PageView>;
  /** Dispatches `count` commands tagged `<prefix><i>`, without waiting for them. */
  dispatch(prefix: string, count: number): void;
  flush(): Promise<void>;
  view(): PageView;
  whenIdle(): Promise<void>;
}

export interface PageView {
  status: string;
  storage: string;
  lastError: string | undefined;
  restored: boolean;
  pending: number;
  confirmed: { state: { n: number; tags: string[] }; version: number };
  view: { n: number; tags: string[] };
}

const KEY = 'board';
let client: LockstepClient | undefined;
let stream: SyncedStream<typeof taggedCounter> | undefined;

function view(): PageView {
  const status = stream!.getStatus();
  return JSON.parse(
    JSON.stringify({
      status: client!.status.status,
      storage: client!.status.storage,
      lastError: client!.status.lastError?.message,
      restored: status.restored,
      pending: status.pending,
      confirmed: stream!.confirmed,
      view: stream!.getSnapshot(),
    }),
  ) as PageView;
}

const api: OfflinePageApi = {
  async start(url, database) {
    client = createClient({ connect: webSocketConnector(url), persistence: indexedDbStorage({ name: database }), backoff: { initialMs: 20, maxMs: 200 } });
    await client.restored;
    stream = client.stream(taggedCounter, KEY);
    return view();
  },
  dispatch(prefix, count) {
    for (let i = 0; i < count; i++) stream!.dispatch({ type: 'add', payload: { by: 1, tag: `${prefix}${i}` } }).catch(() => {});
  },
  flush: () => client!.flush(),
  view,
  whenIdle: () => client!.whenIdle(),
};

(globalThis as unknown as { lockstepOffline: OfflinePageApi }).lockstepOffline = api;

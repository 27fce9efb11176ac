import { resolve } from 'node:path';
import { FileEventStore, MemoryEventStore, type EventStore } from '@lockstep/server';
import { DEFAULT_DATA_DIR } from './contract.js';

/** `'memory'`, a `postgres://` / `postgresql://` URL, or a store the caller owns. */
export type StoreOption = EventStore | 'memory' | (string & {});

export interface OpenedStore {
  store: EventStore;
  /** For logs: `file:/abs/dir`, `memory`, or the URL with its password masked. */
  description: string;
  /** Closes the store if the server opened it (a store passed in belongs to the caller). */
  close(): Promise<void>;
}

const POSTGRES_URL = /^postgres(?:ql)?:\/\/./i;

/** Opens the store the options name; the file store in `dataDir` by default, reporting its recovery. */
export async function openStore(option: StoreOption | undefined, dataDir: string | undefined, log: (line: string) => void): Promise<OpenedStore> {
  if (option !== undefined && typeof option !== 'string') return { store: option, description: 'custom', close: async () => {} };
  if (option === 'memory') return owned(new MemoryEventStore(), 'memory');
  if (option !== undefined) {
    if (!POSTGRES_URL.test(option)) throw new TypeError(`store: expected 'memory' or a postgres:// URL, got ${JSON.stringify(option)}`);
    // Loaded only here: a server on the file store never loads the PostgreSQL driver.
    const { PostgresEventStore, postgresStoreOptionsFromUrl } = await import('@lockstep/postgres');
    const store = await PostgresEventStore.open({
      ...postgresStoreOptionsFromUrl(option),
      onError: (error, context) => log(`postgres: ${context}: ${error instanceof Error ? error.message : String(error)}`),
    });
    return owned(store, redactPassword(option));
  }
  const directory = resolve(dataDir ?? DEFAULT_DATA_DIR);
  const store = await FileEventStore.open(directory, {
    onError: (error, context) => log(`file store: ${context}: ${error instanceof Error ? error.message : String(error)}`),
  });
  const { tornTail, adoptedSnapshots, epochRotated } = store.recovery;
  if (tornTail) log(`recovery: cut a torn tail of ${tornTail.bytes} bytes at byte ${tornTail.offset} of ${tornTail.file} (an unfinished write)`);
  for (const adopted of adoptedSnapshots) log(`recovery: ${adopted.stream} continues from its snapshot at version ${adopted.version}`);
  if (epochRotated) log(`recovery: new epoch (${epochRotated}); clients resync from snapshots`);
  return owned(store, `file:${directory}`);
}

function owned(store: EventStore, description: string): OpenedStore {
  return { store, description, close: () => store.close() };
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`: descriptions end up in logs. */
function redactPassword(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@');
}

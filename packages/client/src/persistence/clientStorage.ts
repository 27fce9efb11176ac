/**
 * Where a persistent client keeps its records (see `persistedRecords.ts` for what they hold). A
 * storage only stores JSON values by key; the client decides what to write and when, checks and
 * upgrades what it reads, and never writes on the path that applies the hub's events.
 *
 * Adapters: {@link memoryStorage} (here), `fileStorage` (`@lockstep/client/persist-file`, Node) and
 * `indexedDbStorage` (`@lockstep/client/persist-indexeddb`, browsers). The behaviour suite in
 * `clientStorage.suite.ts` runs against each of them.
 */
export interface ClientStorage {
  /**
   * Everything stored, by key. An entry that cannot be read (a torn or corrupt file) is left out
   * and reported in `problems`, never thrown; a storage that cannot be opened at all rejects.
   */
  load(): Promise<{ records: Map<string, unknown>; problems: Error[] }>;
  /**
   * Stores the values (`undefined` deletes the key). Each value is written all or nothing: a
   * process or page killed during the write leaves the previous value or the new one, never a mix.
   */
  save(changes: ReadonlyMap<string, unknown>): Promise<void>;
  /** Removes everything this storage holds. */
  clear(): Promise<void>;
  /** Releases the storage (file handles, a database connection, a lock). */
  close(): Promise<void>;
}

/**
 * Keeps the records in memory: what a client without persistence does, as a storage. Records are
 * copied (JSON) on save and on load, as a real storage would. Pass the same instance to a second
 * client to simulate a restart in tests.
 */
export function memoryStorage(): ClientStorage & { readonly records: ReadonlyMap<string, string> } {
  const records = new Map<string, string>();
  return {
    records,
    load: () => Promise.resolve({ records: new Map([...records].map(([key, text]) => [key, JSON.parse(text) as unknown])), problems: [] }),
    save(changes) {
      for (const [key, value] of changes) {
        if (value === undefined) records.delete(key);
        else records.set(key, JSON.stringify(value));
      }
      return Promise.resolve();
    },
    clear() {
      records.clear();
      return Promise.resolve();
    },
    close: () => Promise.resolve(),
  };
}

/**
 * `@lockstep/client/persist-indexeddb`: keep a client's streams in IndexedDB across reloads (browsers).
 *
 * ```ts
 * import { createClient } from '@lockstep/client';
 * import { indexedDbStorage } from '@lockstep/client/persist-indexeddb';
 *
 * const client = createClient({ connect, persistence: indexedDbStorage({ name: 'my-app' }) });
 * await client.restored; // the stored state is in the streams: render
 * ```
 */
export { INDEXED_DB_DEFAULTS, indexedDbStorage, type IdbFactoryLike, type IndexedDbStorageOptions } from './persistence/indexedDbStorage.js';
export { PersistenceError, type PersistenceErrorCode } from './persistence/PersistenceError.js';

/**
 * `@lockstep/client/persist-file`: keep a client's streams in a folder across restarts (Node only).
 *
 * ```ts
 * import { createClient } from '@lockstep/client';
 * import { fileStorage } from '@lockstep/client/persist-file';
 *
 * const client = createClient({ connect, persistence: fileStorage({ directory: context.globalStorageUri.fsPath }) });
 * ```
 */
export { fileStorage, type FileStorageOptions } from './persistence/fileStorage.js';
export { PersistenceError, type PersistenceErrorCode } from './persistence/PersistenceError.js';

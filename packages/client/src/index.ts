export { BACKOFF_DEFAULTS, backoffDelay, type BackoffOptions } from './backoff.js';
export { CLIENT_DEFAULTS, LockstepClient, createClient, type ClientOptions, type ClientStatus } from './client.js';
export type { CallOptions } from './outgoingCalls.js';
export type { ClientCallContext, ClientNotificationListener } from './servedServices.js';
export { SyncedStream, type ConfirmedChange, type DispatchOptions, type PendingCommand, type StreamStatus, type SyncStatus } from './syncedStream.js';
export { memoryStorage, type ClientStorage } from './persistence/clientStorage.js';
export { PersistenceError, type PersistenceErrorCode } from './persistence/PersistenceError.js';
export { PERSIST_DEFAULTS, type StorageStatus } from './persistence/persister.js';
export { PERSISTED_FORMAT, type PersistedCommand, type PersistedStream } from './persistence/persistedRecords.js';

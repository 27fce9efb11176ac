export { BACKOFF_DEFAULTS, backoffDelay, type BackoffOptions } from './backoff.js';
export { CLIENT_DEFAULTS, LockstepClient, createClient, type ClientOptions, type ClientStatus, type ExtensionNotification } from './client.js';
export { SyncedStream, type ConfirmedChange, type DispatchOptions, type PendingCommand, type StreamStatus, type SyncStatus } from './syncedStream.js';

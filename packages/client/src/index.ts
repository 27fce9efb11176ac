export { BACKOFF_DEFAULTS, backoffDelay, type BackoffOptions } from './backoff.js';
export { CLIENT_DEFAULTS, LockstepClient, createClient, type ClientOptions, type ClientStatus } from './client.js';
export type { CallOptions } from './outgoingCalls.js';
export type { ClientCallContext, ClientNotificationListener } from './servedServices.js';
export { SyncedStream, type ConfirmedChange, type DispatchOptions, type PendingCommand, type StreamStatus, type SyncStatus } from './syncedStream.js';

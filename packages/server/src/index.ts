export {
  StoreConflictError,
  snapshotJson,
  type CommandRecord,
  type Commit,
  type EventStore,
  type PresenceRegistry,
  type Snapshot,
  type StoredEvent,
  type StoredRefusal,
  type StreamInfo,
} from './eventStore.js';
export { HUB_DEFAULTS, Hub, MAX_PAYLOAD_DEPTH, type AcceptOptions, type ExecuteOptions, type HubOptions, type ReadOptions } from './hub.js';
export type { AccessAction, Identity, StreamAction } from './identity.js';
export type { HubCallOptions, Peer, PeerTarget } from './peer.js';
export {
  implement,
  type NotificationContext,
  type NotificationListener,
  type ServeOptions,
  type ServiceContext,
  type ServiceImplementation,
} from './serviceRegistry.js';
export type { CommandCheck } from './commandPipeline.js';
export { CorruptLogError } from './fileStore/CorruptLogError.js';
export { FILE_STORE_DEFAULTS, FileEventStore, type FileEventStoreOptions, type RecoveryReport } from './fileStore/FileEventStore.js';
export type { Durability } from './fileStore/logWriter.js';
export type { RepairOptions, RepairReport } from './fileStore/repair.js';
export { StoreLockedError } from './fileStore/StoreLockedError.js';
export { writePrivateFile } from './privateFiles.js';
export {
  DEFAULT_MAX_COMMAND_RECORDS,
  DEFAULT_MAX_EVENTS,
  DEFAULT_MAX_STREAMS,
  MemoryEventStore,
  type MemoryEventStoreOptions,
  type MemoryEventStoreUsage,
} from './memoryEventStore.js';
export {
  GENERATED_TOKEN_BYTES,
  MIN_TOKEN_LENGTH,
  RUNTIME_DIR_ENV,
  TOKEN_ENV,
  TOKEN_HOLDER,
  announceToken,
  announcedTokenFile,
  findAnnouncedToken,
  generateToken,
  loadServerToken,
  readTokenFile,
  runtimeDirectory,
  tokenAuthenticator,
  tokenMatches,
  type LoadServerTokenOptions,
  type ServerToken,
  type ServerTokenSource,
  type TokenEnv,
} from './serverToken.js';

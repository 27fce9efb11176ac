export { systemClock, type Clock, type TimerHandle } from './clock.js';
export { FailureWindow, type FailureLimit } from './failureWindow.js';
export {
  DEFAULT_BATCH_BYTES,
  DEFAULT_BATCH_MESSAGES,
  FrameBatcher,
  MAX_BATCH_MESSAGES,
  writeBatched,
  type BatchLimits,
  type FrameBatcherOptions,
} from './frameBatcher.js';
export { createJsonCodec, jsonCodec, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_JSON_DEPTH, type Codec, type CodecLimits, type Frame, type JsonCodecLimits } from './codec.js';
export {
  defineDomain,
  deterministicIds,
  type AnyDomain,
  type CommandOf,
  type CommandUnion,
  type DecideContext,
  type Domain,
  type DomainDefinition,
  type EventDefinition,
  type EventMeta,
  type EventOf,
  type EventUnion,
  type LeaseDefinition,
  type NewEventOf,
  type StateDraft,
  type StateOf,
  type VersionedEventSchema,
} from './domain.js';
export {
  COMMAND_ID_PATTERN,
  DOMAIN_NAME_PATTERN,
  STREAM_KEY_PATTERN,
  commandIdSchema,
  commandSchema,
  eventSchema,
  parseStreamName,
  streamName,
  streamNameSchema,
  versionSchema,
  type Command,
  type Event,
  type StreamName,
} from './envelope.js';
export { DomainRejection, ErrorCodes, LockstepError, TransportError, reject, type ErrorCode, type WireError } from './errors.js';
export { canonicalJson, fingerprint, hashString } from './hash.js';
export { createMemoryLink, type LinkFaults, type MemoryLink, type MemoryLinkOptions } from './memoryTransport.js';
export * as protocol from './protocol.js';
export { PROTOCOL_VERSION } from './protocol.js';
export { createRandom, type Random } from './random.js';
export type { Transport, TransportListener, TransportState } from './transport.js';
export { randomId } from './randomId.js';
export { applyCommand, createCommandBatch, type AppliedCommand, type ApplyCommandOptions, type CommandBatch } from './applyCommand.js';
export {
  DEFAULT_MAX_FOCUSED,
  ENTITY_ID_PATTERN,
  MAX_FOCUSED_LIMIT,
  MAX_WORKSPACE_COUNT,
  MAX_WORKSPACE_ID_LENGTH,
  SESSION_KINDS,
  SESSION_PROFILE_PATTERN,
  SESSION_STATUSES,
  SIGNAL_NAME_PATTERN,
  TASK_LIMITS,
  TASK_PRIORITIES,
  TASK_STATUSES,
  builtInDomains,
  evictionOrder,
  focusDomain,
  isFocused,
  nextEviction,
  orchestrationDomain,
  sessionCount,
  sessionsOfTask,
  taskCount,
  tasksByStatus,
  tasksDomain,
  tasksOfSession,
  type FocusDomain,
  type FocusLossReason,
  type FocusState,
  type LinkRemovalReason,
  type OrchestrationDomain,
  type OrchestrationState,
  type OrchestrationTotals,
  type Session,
  type SessionChanges,
  type SessionKind,
  type SessionStatus,
  type Task,
  type TaskChanges,
  type TaskPriority,
  type TaskStatus,
  type TasksDomain,
  type TasksState,
  type WorkspaceEntry,
  type WorkspaceRemovalReason,
} from './domains/index.js';

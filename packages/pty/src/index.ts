export { Attachment, type AttachmentInfo, type AttachmentPeer, type AttachmentSettings } from './attachment.js';
export { DELIVERY_DEFAULTS, resolveDeliveryPolicy, throttle, type DeliveryMode, type DeliveryPolicy, type ResolvedDeliveryPolicy } from './deliveryPolicy.js';
export { FOCUS_WATCHER_IDENTITY } from './focusTracker.js';
export { isAlive, killSession, sessionMembers, signalGroup } from './processTree.js';
export {
  MAX_INPUT_BYTES,
  MAX_TERMINAL_SIZE,
  TERMINAL_ID_PATTERN,
  TerminalMethods,
  TerminalNotifications,
  attachParamsSchema,
  attachResultSchema,
  detachParamsSchema,
  detachResultSchema,
  detachedNotificationSchema,
  exitNotificationSchema,
  inputParamsSchema,
  inputResultSchema,
  outputNotificationSchema,
  resizeParamsSchema,
  resizeResultSchema,
  resizedNotificationSchema,
  terminalIdSchema,
  terminalResource,
  terminalService,
  terminalSizeSchema,
  type AttachParams,
  type AttachResult,
  type DetachedNotification,
  type ExitNotification,
  type InputParams,
  type OutputNotification,
  type ResizedNotification,
  type TerminalService,
} from './protocol.js';
export { DEFAULT_SCROLLBACK_BYTES, Scrollback } from './scrollback.js';
export {
  DEFAULT_COLS,
  DEFAULT_INHERITED_ENV,
  DEFAULT_ROWS,
  DEFAULT_TERMINAL_ENV,
  buildEnvironment,
  findExecutable,
  parseSpawnOptions,
  resolveSpawn,
  spawnOptionsSchema,
  type ResolvedSpawn,
  type SpawnOptions,
  type SpawnPolicy,
} from './spawnPolicy.js';
export type { WaitingSpawn } from './spawnQueue.js';
export {
  DEFAULT_CHUNK_BYTES,
  DEFAULT_COALESCE_MS,
  DEFAULT_KILL_GRACE_MS,
  MAX_CHUNK_BYTES,
  Terminal,
  spawnTerminal,
  type ExitInfo,
  type OutputRange,
  type TerminalSettings,
  type TerminalSource,
} from './terminal.js';
export { createTerminalExtension, type TerminalExtension, type TerminalExtensionOptions } from './terminalExtension.js';
export {
  DEFAULT_MAX_TERMINALS,
  DEFAULT_MAX_TERMINALS_PER_IDENTITY,
  DEFAULT_RETAIN_EXITED_MS,
  SPAWN_CANCELLED,
  TerminalManager,
  WAITING_FOR_TERMINAL_SLOT,
  statusCode,
  type SpawnPlacement,
  type TerminalManagerOptions,
} from './terminalManager.js';

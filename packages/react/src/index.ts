export { LockstepProvider, useLockstepClient, type LockstepProviderProps } from './LockstepProvider.js';
export { shallowEqual } from './shallowEqual.js';
export { DEFAULT_RELEASE_AFTER_MS } from './streamRegistry.js';
export { useCommand, type Dispatch } from './useCommand.js';
export { useConnectionStatus, type ConnectionStatus } from './useConnectionStatus.js';
export { useStream, useStreamStatus } from './useStream.js';

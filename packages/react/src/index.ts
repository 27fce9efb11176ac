export { LockstepProvider, useLockstepClient, type LockstepProviderProps } from './LockstepProvider.js';
export { shallowEqual } from './shallowEqual.js';
export { DEFAULT_RELEASE_AFTER_MS } from './streamRegistry.js';
export { useCall, type CallAction, type CallResult, type CallState, type UseCallOptions } from './useCall.js';
export { useCommand, type Dispatch } from './useCommand.js';
export { useConnectionStatus, type ConnectionStatus } from './useConnectionStatus.js';
export { useNotification } from './useNotification.js';
export { useStream, useStreamStatus } from './useStream.js';

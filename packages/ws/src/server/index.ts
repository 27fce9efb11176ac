export { ServerSocketTransport } from './serverSocketTransport.js';
export {
  WS_SERVER_DEFAULTS,
  createWebSocketServer,
  type AttachedOptions,
  type LockstepWebSocketServer,
  type NoServerOptions,
  type StandaloneOptions,
  type TransportAcceptor,
  type WebSocketServerCommonOptions,
  type WebSocketServerOptions,
} from './createWebSocketServer.js';
export { HostCheck, type HostCheckOptions } from './hostCheck.js';
export { UpgradeRefusal, type AllowedOrigins, type UpgradeRequest } from './upgrade.js';
export { BEARER_SUBPROTOCOL_PREFIX, JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, SUBPROTOCOLS, type Subprotocol } from '../subprotocols.js';
export { CloseCodes } from '../closeReason.js';

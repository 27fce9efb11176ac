export { CloseCodes } from './closeReason.js';
export {
  BEARER_SUBPROTOCOL_PREFIX,
  JSON_SUBPROTOCOL,
  MSGPACK_SUBPROTOCOL,
  SUBPROTOCOLS,
  bearerSubprotocol,
  subprotocolForCodec,
  type Subprotocol,
} from './subprotocols.js';
export { webSocketConnector, webSocketTransport, type WebSocketTransportOptions } from './webSocketTransport.js';

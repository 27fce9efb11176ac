// What `isomorphic-ws` is in a browser bundle: the platform's WebSocket, typed by its user.
declare const WebSocket: unknown;
export default WebSocket;

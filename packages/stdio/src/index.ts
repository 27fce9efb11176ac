export { DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_MESSAGE_BYTES, FrameReader, encodeFrame, type FrameReaderHandlers, type FrameReaderOptions } from './framing.js';
export { createStdioTransport, type StdioTransportOptions } from './stdioTransport.js';
export { serveStdio, type ServeStdioOptions, type StdioServer } from './serveStdio.js';
export { guardStdout, isStdoutGuarded } from './stdoutGuard.js';
export { SIDECAR_DEFAULTS, Sidecar, createSidecar, type SidecarEvent, type SidecarInfo, type SidecarOptions, type SidecarRestartOptions } from './sidecar.js';
export { SidecarUnavailableError, type SidecarUnavailableReason } from './SidecarUnavailableError.js';

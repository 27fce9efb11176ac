export { DEFAULT_HOST, DEFAULT_PORT, UsageError, parseServeOptions, serveOptionsSchema, type ServeOptions } from './options.js';
export { USAGE, run, type CliIo } from './run.js';
export { serve, type ServeIo } from './serve.js';

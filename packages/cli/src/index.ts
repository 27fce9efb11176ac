export {
  DEFAULT_HOST,
  DEFAULT_PORT,
  UsageError,
  describeStore,
  parseRepairOptions,
  parseServeOptions,
  serveOptionsSchema,
  storeSpecSchema,
  type ServeOptions,
  type StoreSpec,
} from './options.js';
export { repair, type RepairIo } from './repair.js';
export { USAGE, run, type CliIo } from './run.js';
export { serve, type ServeIo } from './serve.js';

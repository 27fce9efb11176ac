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
export { CLIENT_SUBCOMMANDS, parseClientCommand, subcommandHelp, type ClientCommandLine, type ClientEnv } from './clientArgs.js';
export type { CommandOperation, CommandOutcome, Operation, ReadOperation, Report, Subcommand, WatchOperation } from './commands/spec.js';
export { ExitCodes, type ExitCode } from './exitCodes.js';
export { DEFAULT_KEY, DEFAULT_SERVER_URL, DEFAULT_TIMEOUT_SECONDS, WEBSOCKET_PATH, hubOptionsSchema, serverUrlSchema, type HubOptions } from './hubOptions.js';
export { HubFailure, type HubIo } from './hubSession.js';
export { repair, type RepairIo } from './repair.js';
export { runClientCommand } from './runClientCommand.js';
export { USAGE, run, type CliIo } from './run.js';
export { serve, type ServeIo } from './serve.js';

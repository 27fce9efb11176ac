import { z } from 'zod';

/**
 * Where the client subcommands connect unless `--server` or `LOCKSTEP_SERVER` says otherwise: the
 * reference server's WebSocket endpoint. Kept in step by hand with examples/reference-server's
 * contract.ts (DEFAULT_HOST, DEFAULT_PORT, WS_PATH), which a published package cannot import.
 * `lockstep serve` listens on the same port and accepts any path, so the default reaches it too.
 */
export const DEFAULT_SERVER_URL = 'ws://127.0.0.1:7420/lockstep';
/** The path an `http(s)://` server address is mapped to (the reference server's WS_PATH). */
export const WEBSOCKET_PATH = '/lockstep';
/** Seconds to wait for a connection (and, once connected, for an answer). */
export const DEFAULT_TIMEOUT_SECONDS = 10;
/** The stream key of `--project` and `--tenant` when they are not given. */
export const DEFAULT_KEY = 'default';

/**
 * `--server`: a `ws://` or `wss://` URL used as it is, or an `http://`/`https://` address (what a
 * browser shows for the dashboard) mapped to its WebSocket endpoint: same host, `ws(s)://`, and the
 * path `/lockstep` under the given one (`http://host:7420/` → `ws://host:7420/lockstep`).
 */
export const serverUrlSchema = z.string().transform((value, context) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    context.addIssue({ code: 'custom', message: `expected a ws://, wss://, http:// or https:// URL, got ${JSON.stringify(value)}` });
    return z.NEVER;
  }
  switch (url.protocol) {
    case 'ws:':
    case 'wss:':
      return url.href;
    case 'http:':
    case 'https:': {
      url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
      if (!url.pathname.endsWith(WEBSOCKET_PATH)) url.pathname = url.pathname.replace(/\/*$/, '') + WEBSOCKET_PATH;
      url.hash = '';
      return url.href;
    }
    default:
      context.addIssue({ code: 'custom', message: `expected a ws://, wss://, http:// or https:// URL, got ${JSON.stringify(value)}` });
      return z.NEVER;
  }
});

/** `--timeout`: seconds, fractions allowed (`0.5`), at most an hour. */
const timeoutSchema = z.coerce
  .number({ message: 'expected a number of seconds' })
  .positive('expected a number of seconds above 0')
  .max(3600, 'at most 3600 seconds')
  .transform((seconds) => Math.round(seconds * 1000));

/** The options every client subcommand takes, after the environment's defaults are applied. */
export const hubOptionsSchema = z.strictObject({
  server: serverUrlSchema.default(DEFAULT_SERVER_URL),
  token: z.string().min(1, 'expected a token').max(8192, 'at most 8192 characters').optional(),
  json: z.boolean().default(false),
  timeout: timeoutSchema.default(DEFAULT_TIMEOUT_SECONDS * 1000),
});

export type HubOptions = { server: string; token?: string | undefined; json: boolean; timeoutMs: number };

/** The `parseArgs` declarations of the options in {@link hubOptionsSchema}. */
export const HUB_OPTION_FLAGS = {
  server: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
} as const;

/** The help lines of the options in {@link hubOptionsSchema}: flag, then meaning. */
export const HUB_OPTIONS_HELP: ReadonlyArray<readonly [string, string]> = [
  [
    '--server URL',
    `the hub: ws://… or wss://… as is; http(s)://HOST[:PORT] means its ${WEBSOCKET_PATH} endpoint (default: $LOCKSTEP_SERVER, else ${DEFAULT_SERVER_URL})`,
  ],
  ['--token TOKEN', 'bearer token, sent at the WebSocket upgrade and in hello (default: $LOCKSTEP_TOKEN)'],
  ['--json', 'machine-readable output: one JSON document per result (NDJSON for watch)'],
  ['--timeout SECONDS', `how long to wait for the hub to connect, then to answer (default: ${DEFAULT_TIMEOUT_SECONDS})`],
  ['--help', "show the command's help"],
];

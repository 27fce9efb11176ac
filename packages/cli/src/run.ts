import { CLIENT_GROUPS, clientCommandsUsage, parseClientCommand, type ClientEnv } from './clientArgs.js';
import { ExitCodes } from './exitCodes.js';
import { DEFAULT_SERVER_URL } from './hubOptions.js';
import { SERVE_LIMIT_DEFAULTS, UsageError, parseRepairOptions, parseServeOptions } from './options.js';

// What runs a command (the hub, the WebSocket server and client, the file store) is imported when
// that command runs: `lockstep --help` and the usage errors load only the command-line tables.

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
  stopSignal: Promise<string>;
  /** Asks a yes/no question when a person can answer (an interactive terminal). */
  confirm?: (question: string) => Promise<boolean>;
  /**
   * Shows (or, with '', clears) the one-line connection status of the client commands. Given only
   * when stderr is an interactive terminal.
   */
  status?: (text: string) => void;
  /** Defaults of the client commands: `LOCKSTEP_SERVER`, `LOCKSTEP_TOKEN`. */
  env?: ClientEnv;
}

/** `lockstep serve --help`. */
export const SERVE_HELP = `Usage: lockstep serve [options]

Run a hub with the built-in domains (orchestration, focus, tasks) until SIGINT or SIGTERM.

Options:
  --port N            WebSocket port (default 7420; 0 picks a free one)
  --host H            interface to listen on (default 127.0.0.1)
  --store memory      where events live (default memory): in memory, gone on exit
  --store file:DIR    in a crash-safe log in directory DIR (created if new; one
                      process owns a directory at a time)
  --store postgres://USER@HOST:PORT/DB[?schema=NAME]
                      in PostgreSQL (schema default lockstep, created if new); any
                      number of hubs may share one schema
  --codec json|msgpack  accept only this WebSocket subprotocol (default both)
  --stdio             serve lockstep/1 on stdin/stdout instead (LSP framing; no
                      token: the process that spawned it owns the pipe)
  --token-file PATH   the token clients must present, read from PATH (generated there
                      if missing). Default: $LOCKSTEP_TOKEN, else DIR/token with
                      --store file:DIR, else a token kept in the runtime directory
                      ($LOCKSTEP_RUNTIME_DIR, $XDG_RUNTIME_DIR/lockstep or ~/.lockstep/run)
  --allowed-host NAME[:PORT]  one more Host to answer to (repeatable)
  --allowed-origin ORIGIN     one more browser origin allowed (repeatable; by default
                      only pages of the hub's own host and port)
  --insecure-no-auth  no token (loopback --host only; a warning is printed)
  --help              show this text

Limits (off lifts one):
  --rate-limit N|off  messages a second per connection, bursts of 2×N; past it a
                      message is answered RATE_LIMITED (default ${SERVE_LIMIT_DEFAULTS.rateLimit}; off with --stdio)
  --max-connections-per-address N|off
                      WebSocket connections at once from one remote address; more are
                      refused with HTTP 429 (default ${SERVE_LIMIT_DEFAULTS.maxConnectionsPerAddress}; behind a proxy every
                      client has the proxy's address: raise it or limit at the proxy)
  --max-subscriptions N  streams one connection may subscribe to at once; past it
                      LIMIT_EXCEEDED (default ${SERVE_LIMIT_DEFAULTS.maxSubscriptions})
  --close-timeout SECONDS  on SIGINT/SIGTERM, how long to wait for clients to finish
                      their closing handshake before dropping them (default ${SERVE_LIMIT_DEFAULTS.closeTimeoutSeconds})

Exit codes: 0 stopped on request, 1 failed (the port is taken, the store is locked, …),
2 bad command line.`;

/** `lockstep repair --help`. */
export const REPAIR_HELP = `Usage: lockstep repair DIR [--yes]

Check a file store's directory (stopped first) and report damage. With --yes (or a "y" at the
prompt) cut the log at the first bad record; the cut part is kept in DIR/repair-<time>/.

Exit codes: 0 nothing to repair, or repaired; 1 damage left in place, the directory is in use, or
another failure; 2 bad command line.`;

export const USAGE = `Usage: lockstep <command> [options]

Commands:
  serve     Run a hub with the built-in domains (orchestration, focus, tasks): on WebSocket
            (--port, --host) or stdio (--stdio); events in memory, a file:DIR or PostgreSQL
            (--store); a token required (--token-file); limits (--rate-limit, …).
            lockstep serve --help tells every option.
  repair DIR [--yes]
            Check a file store's directory (stopped first) and report damage. With --yes (or a
            "y" at the prompt) cut the log at the first bad record; the cut part is kept in
            DIR/repair-<time>/.
  help      Show this text.

Client commands (connect to a hub: --server URL, default $LOCKSTEP_SERVER or ${DEFAULT_SERVER_URL}):
${clientCommandsUsage()}
  Each takes --server URL, --token TOKEN, --json, --timeout SECONDS; tasks and focus take
  --project KEY, orchestration --tenant KEY (default "default"). lockstep <command> --help tells more.

Exit codes: 0 done, 1 failed or refused by the hub (repair: damage left in place), 2 bad command
line, 3 could not connect to the hub, 130 interrupted.`;

/** Runs the `lockstep` command line; answers the process exit code. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command !== undefined && CLIENT_GROUPS.has(command)) {
      const parsed = parseClientCommand(argv, io.env);
      if ('help' in parsed) {
        io.out(parsed.help);
        return ExitCodes.ok;
      }
      const [{ localServerToken }, { runClientCommand }] = await Promise.all([import('./localToken.js'), import('./runClientCommand.js')]);
      // No token given: a hub on this machine may have left its token for its user's clients.
      const hub = parsed.hub.token === undefined ? { ...parsed.hub, token: await localServerToken(parsed.hub.server, io.env ?? {}) } : parsed.hub;
      return await runClientCommand(parsed.operation, hub, io);
    }
    switch (command) {
      case 'serve': {
        const options = parseServeOptions(rest);
        if (options.help) {
          io.out(SERVE_HELP);
          return ExitCodes.ok;
        }
        const { serve } = await import('./serve.js');
        // With --stdio, stdout carries frames only: human output goes to stderr.
        await serve(options, { log: options.stdio ? io.err : io.out, stopSignal: io.stopSignal, env: io.env ?? {} });
        return ExitCodes.ok;
      }
      case 'repair': {
        const options = parseRepairOptions(rest);
        if ('help' in options) {
          io.out(REPAIR_HELP);
          return ExitCodes.ok;
        }
        const { repair } = await import('./repair.js');
        return await repair(options.directory, options.yes, io.confirm ? { out: io.out, confirm: io.confirm } : { out: io.out });
      }
      case 'help':
        // `lockstep help serve` is `lockstep serve --help`.
        if (rest[0] !== undefined) return await run([rest[0], '--help'], io);
        io.out(USAGE);
        return ExitCodes.ok;
      case undefined:
      case '--help':
      case '-h':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`lockstep: ${error.message}\n\n${error.usage ?? (command === 'serve' ? SERVE_HELP : command === 'repair' ? REPAIR_HELP : USAGE)}`);
      return 2;
    }
    io.err(`lockstep: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

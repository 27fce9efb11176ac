import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { builtInDomains } from '@lockstep/core';
import {
  FileEventStore,
  Hub,
  MemoryEventStore,
  announceToken,
  loadServerToken,
  runtimeDirectory,
  tokenAuthenticator,
  type EventStore,
  type HubOptions,
  type ServerToken,
  type TokenEnv,
} from '@lockstep/server';
import { serveStdio } from '@lockstep/stdio';
import { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, type Subprotocol } from '@lockstep/ws';
import { HostCheck, createWebSocketServer, type StandaloneOptions } from '@lockstep/ws/server';
import { SERVE_LIMIT_DEFAULTS, describeStore, type ServeOptions } from './options.js';

/** Where `lockstep serve` writes and what it listens to: the process, or a test's stand-in. */
export interface ServeIo {
  /** Human-readable lines (the address, shutdown); with --stdio this must be stderr. */
  log: (line: string) => void;
  /** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
  stopSignal: Promise<string>;
  /** `LOCKSTEP_TOKEN` and where the runtime directory is (`LOCKSTEP_RUNTIME_DIR`, `XDG_RUNTIME_DIR`). */
  env: TokenEnv;
}

/**
 * The token a WebSocket hub requires: `LOCKSTEP_TOKEN`, else `--token-file`, else one kept (made on
 * first use, mode 0600) beside a file store's directory, or in the runtime directory.
 */
function loadToken(options: ServeOptions, env: ServeIo['env']): Promise<ServerToken> {
  const defaultFile = options.store.kind === 'file' ? join(options.store.directory, 'token') : join(runtimeDirectory(env), 'serve.token');
  return loadServerToken({ env, tokenFile: options['token-file'], defaultFile });
}

/** Opens the store `--store` names; a file store reports what its recovery did. */
async function openStore(options: ServeOptions, log: (line: string) => void): Promise<EventStore> {
  const spec = options.store;
  switch (spec.kind) {
    case 'memory':
      return new MemoryEventStore();
    case 'file': {
      const store = await FileEventStore.open(spec.directory);
      const { tornTail, adoptedSnapshots, epochRotated } = store.recovery;
      if (tornTail) log(`recovery: cut a torn tail of ${tornTail.bytes} bytes at byte ${tornTail.offset} of ${tornTail.file} (an unfinished write)`);
      for (const adopted of adoptedSnapshots) {
        log(`recovery: ${adopted.stream} continues from its snapshot at version ${adopted.version} (its log ended at ${adopted.logHead})`);
      }
      if (epochRotated) log(`recovery: new epoch (${epochRotated}); clients resync from snapshots`);
      return store;
    }
    case 'postgres': {
      // Loaded only here: a hub on memory or files never loads the PostgreSQL driver.
      const { PostgresEventStore, postgresStoreOptionsFromUrl } = await import('@lockstep/postgres');
      return PostgresEventStore.open({
        ...postgresStoreOptionsFromUrl(spec.url),
        onError: (error, context) => log(`postgres: ${context}: ${error instanceof Error ? error.message : String(error)}`),
      });
    }
  }
}

/** The hub options of `--rate-limit` and `--max-subscriptions`; absent ones keep the hub's defaults. */
export function hubLimits(options: ServeOptions): Pick<HubOptions, 'rateLimit' | 'maxSubscriptionsPerConnection'> {
  const rate = options['rate-limit'];
  return {
    // A stdio hub has exactly one peer, the host that spawned it: no rate limit unless asked for.
    ...(rate === undefined
      ? options.stdio
        ? { rateLimit: false as const }
        : {}
      : { rateLimit: rate === false ? false : { messagesPerSecond: rate, burst: 2 * rate } }),
    ...(options['max-subscriptions'] !== undefined && { maxSubscriptionsPerConnection: options['max-subscriptions'] }),
  };
}

/** The WebSocket server options of `--max-connections-per-address` and `--close-timeout`. */
export function webSocketLimits(options: ServeOptions): Pick<StandaloneOptions, 'maxConnectionsPerAddress' | 'closeTimeoutMs'> {
  const perAddress = options['max-connections-per-address'];
  return {
    ...(perAddress !== undefined && { maxConnectionsPerAddress: perAddress === false ? Number.POSITIVE_INFINITY : perAddress }),
    ...(options['close-timeout'] !== undefined && { closeTimeoutMs: options['close-timeout'] }),
  };
}

/**
 * Runs a hub with the built-in domains until asked to stop: on WebSocket (`--port`, `--host`) or on
 * this process's stdin/stdout (`--stdio`). Resolves once everything is closed.
 */
export async function serve(options: ServeOptions, io: ServeIo): Promise<void> {
  const store = await openStore(options, io.log);
  const served = (async () => {
    try {
      await serveOn(store, options, io);
    } finally {
      // Appends in flight finish first; a file store then gives up its directory lock.
      await store.close();
    }
  })();
  // Once asked to stop, the hub has its close timeout and a grace period more; a shutdown stuck past
  // that (a store that no longer answers) ends the command anyway, with exit code 1. The process's
  // exit releases what is left: a file store's lock whose process is gone is taken over.
  const boundMs = (options['close-timeout'] ?? SERVE_LIMIT_DEFAULTS.closeTimeoutSeconds * 1000) + SHUTDOWN_GRACE_MS;
  const overdue = io.stopSignal.then(() => delay(boundMs, 'overdue' as const, { ref: false }));
  if ((await Promise.race([served, overdue])) === 'overdue') {
    served.catch(() => {});
    throw new Error(`the hub did not finish stopping within ${boundMs / 1000} s; exiting without waiting for it`);
  }
}

/** How much longer than its close timeout a stopping hub is given (commands in flight, the store). */
export const SHUTDOWN_GRACE_MS = 5_000;

async function serveOn(store: EventStore, options: ServeOptions, io: ServeIo): Promise<void> {
  const storeName = describeStore(options.store);
  // stdio is not authenticated: the process that spawned the hub owns the pipe.
  const token = options.stdio || options['insecure-no-auth'] ? undefined : await loadToken(options, io.env);
  const hub = new Hub({
    domains: builtInDomains,
    store,
    ...(token && { authenticate: tokenAuthenticator(token.token) }),
    ...hubLimits(options),
    onError: (error, context) => io.log(`error ${context}: ${error instanceof Error ? error.message : String(error)}`),
  });

  if (options.stdio) {
    const session = serveStdio(hub);
    io.log(`lockstep hub serving lockstep/1 on stdio (store: ${storeName})`);
    const reason = await Promise.race([io.stopSignal, session.closed.then(() => 'stdin closed')]);
    io.log(`stopping (${reason})`);
    await hub.close();
    session.close();
    return;
  }

  const subprotocols: Subprotocol[] =
    options.codec === 'json' ? [JSON_SUBPROTOCOL] : options.codec === 'msgpack' ? [MSGPACK_SUBPROTOCOL] : [JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL];
  const hosts = new HostCheck(options.host, { allowedHosts: options['allowed-host'], allowedOrigins: options['allowed-origin'] });
  const server = createWebSocketServer(hub, {
    port: options.port,
    host: options.host,
    subprotocols,
    allowedHosts: (host) => hosts.allowsHost(host),
    allowedOrigins: (origin) => hosts.allowsOrigin(origin),
    ...(token && { authenticate: tokenAuthenticator(token.token) }),
    ...webSocketLimits(options),
  });
  await server.ready;
  const { host, port } = server.address();
  hosts.listening(port);
  const withdraw = token && (await announceToken(port, token.token, runtimeDirectory(io.env)));
  try {
    if (token) {
      const where = token.source === 'environment' ? '$LOCKSTEP_TOKEN' : token.file;
      io.log(`clients present the token from ${where} (Authorization: Bearer, or --token); the lockstep CLI on this machine finds it by itself`);
    } else {
      io.log('WARNING: --insecure-no-auth: no token is needed; any program or web page that reaches this port can use the hub');
    }
    // Last: the line that says it is ready.
    io.log(`lockstep hub listening on ws://${host.includes(':') ? `[${host}]` : host}:${port} (subprotocols: ${subprotocols.join(', ')}; store: ${storeName})`);
    const reason = await io.stopSignal;
    io.log(`stopping (${reason})`);
  } finally {
    await withdraw?.();
  }
  // The hub first, so clients are told it is shutting down; then the sockets.
  await hub.close();
  await server.close();
}

import { builtInDomains } from '@lockstep/core';
import { FileEventStore, Hub, MemoryEventStore, type EventStore } from '@lockstep/server';
import { serveStdio } from '@lockstep/stdio';
import { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, type Subprotocol } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import { describeStore, type ServeOptions } from './options.js';

/** Where `lockstep serve` writes and what it listens to: the process, or a test's stand-in. */
export interface ServeIo {
  /** Human-readable lines (the address, shutdown); with --stdio this must be stderr. */
  log(line: string): void;
  /** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
  stopSignal: Promise<string>;
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

/**
 * Runs a hub with the built-in domains until asked to stop: on WebSocket (`--port`, `--host`) or on
 * this process's stdin/stdout (`--stdio`). Resolves once everything is closed.
 */
export async function serve(options: ServeOptions, io: ServeIo): Promise<void> {
  const store = await openStore(options, io.log);
  try {
    await serveOn(store, options, io);
  } finally {
    // Appends in flight finish first; a file store then gives up its directory lock.
    await store.close();
  }
}

async function serveOn(store: EventStore, options: ServeOptions, io: ServeIo): Promise<void> {
  const storeName = describeStore(options.store);
  const hub = new Hub({
    domains: builtInDomains,
    store,
    // A stdio hub has exactly one peer, the host that spawned it: nothing to protect from floods.
    ...(options.stdio ? { rateLimit: false as const } : {}),
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
  const server = createWebSocketServer(hub, { port: options.port, host: options.host, subprotocols });
  await server.ready;
  const { host, port } = server.address();
  io.log(`lockstep hub listening on ws://${host.includes(':') ? `[${host}]` : host}:${port} (subprotocols: ${subprotocols.join(', ')}; store: ${storeName})`);
  const reason = await io.stopSignal;
  io.log(`stopping (${reason})`);
  // The hub first, so clients are told it is shutting down; then the sockets.
  await hub.close();
  await server.close();
}

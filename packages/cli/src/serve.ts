import { builtInDomains } from '@lockstep/core';
import { Hub, MemoryEventStore, type EventStore } from '@lockstep/server';
import { serveStdio } from '@lockstep/stdio';
import { JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL, type Subprotocol } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import type { ServeOptions } from './options.js';

/** Where `lockstep serve` writes and what it listens to: the process, or a test's stand-in. */
export interface ServeIo {
  /** Human-readable lines (the address, shutdown); with --stdio this must be stderr. */
  log(line: string): void;
  /** Resolves when the process is asked to stop (SIGINT, SIGTERM). */
  stopSignal: Promise<string>;
}

function openStore(options: ServeOptions): EventStore {
  switch (options.store) {
    case 'memory':
      return new MemoryEventStore();
  }
}

/**
 * Runs a hub with the built-in domains until asked to stop: on WebSocket (`--port`, `--host`) or on
 * this process's stdin/stdout (`--stdio`). Resolves once everything is closed.
 */
export async function serve(options: ServeOptions, io: ServeIo): Promise<void> {
  const hub = new Hub({
    domains: builtInDomains,
    store: openStore(options),
    // A stdio hub has exactly one peer, the host that spawned it: nothing to protect from floods.
    ...(options.stdio ? { rateLimit: false as const } : {}),
    onError: (error, context) => io.log(`error ${context}: ${error instanceof Error ? error.message : String(error)}`),
  });

  if (options.stdio) {
    const session = serveStdio(hub);
    io.log(`lockstep hub serving lockstep/1 on stdio (store: ${options.store})`);
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
  io.log(`lockstep hub listening on ws://${host.includes(':') ? `[${host}]` : host}:${port} (subprotocols: ${subprotocols.join(', ')}; store: ${options.store})`);
  const reason = await io.stopSignal;
  io.log(`stopping (${reason})`);
  // The hub first, so clients are told it is shutting down; then the sockets.
  await hub.close();
  await server.close();
}

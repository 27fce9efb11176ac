import type { Readable, Writable } from 'node:stream';
import { jsonCodec, type Codec, type LockstepError, type Transport } from '@lockstep/core';
import type { Hub } from '@lockstep/server';
import { filter, firstValueFrom } from 'rxjs';
import { guardStdout } from './stdoutGuard.js';
import { createStdioTransport, type StdioTransportOptions } from './stdioTransport.js';

export interface ServeStdioOptions {
  /** Default `process.stdin`. */
  input?: Readable;
  /** Default `process.stdout`. */
  output?: Writable;
  /**
   * Keep stdout for frames only: `console.log`, `console.info`, `console.debug` and any direct
   * `process.stdout.write` by other code go to stderr instead. Applies when `output` is
   * `process.stdout`; stays in place for the life of the process. Default true.
   */
  guardConsole?: boolean;
  /** Must be a text codec. Default JSON. */
  codec?: Codec;
  /** Incoming messages larger than this are refused with PAYLOAD_TOO_LARGE. Default 1 MiB. */
  maxMessageBytes?: number;
  /** Also told of every framing error the peer is answered about (for logs). Default: nothing. */
  onFramingError?: (error: LockstepError) => void;
}

/** A hub served over stdio. */
export interface StdioServer {
  readonly transport: Transport;
  /**
   * Resolves with the reason once the connection is over — the host closed stdin (it went away),
   * the output broke, or `close()` was called. The caller then closes the hub and exits.
   */
  readonly closed: Promise<string>;
  /** Ends the connection: stdout is ended after the frames already written, stdin is released. */
  close(reason?: string): void;
}

/**
 * Serves lockstep/1 from `hub` over the process's stdin and stdout (one connection: the host that
 * spawned this process). Answers a message it cannot read (bad framing, too large) with a JSON-RPC
 * error whose id is null, as the hub does for an undecodable frame.
 *
 * ```ts
 * const hub = new Hub({ domains: builtInDomains });
 * const server = serveStdio(hub);
 * await server.closed;   // the host closed our stdin
 * await hub.close();
 * ```
 */
export function serveStdio(hub: Hub, options: ServeStdioOptions = {}): StdioServer {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stdout;
  const codec = options.codec ?? jsonCodec;
  if (codec.binary) throw new TypeError(`serveStdio carries text frames: the ${codec.name} codec is binary`);
  const transportOptions: StdioTransportOptions = {
    input,
    output,
    info: { side: 'server' },
    onFramingError: (error) => {
      transport.send(codec.encode({ jsonrpc: '2.0', id: null, error: error.toJSON() }));
      options.onFramingError?.(error);
    },
  };
  if (options.maxMessageBytes !== undefined) transportOptions.maxMessageBytes = options.maxMessageBytes;
  // The transport binds output.write now, before the guard replaces process.stdout.write.
  const transport = createStdioTransport(transportOptions);
  if ((options.guardConsole ?? true) && output === process.stdout) guardStdout();
  const closed = firstValueFrom(transport.state.pipe(filter((state) => state.status === 'closed'))).then((state) =>
    state.status === 'closed' ? state.reason : 'closed',
  );
  hub.accept(transport, { codec });
  const server: StdioServer = {
    transport,
    closed,
    close: (reason = 'server closed') => transport.close(reason),
  };
  return server;
}

/**
 * The sidecar: a hub over the built-in domains on a memory store, serving lockstep/1 on stdin and
 * stdout (what `lockstep serve --stdio` does). It exits when the host closes its stdin or sends SIGTERM.
 */
import { builtInDomains } from '@lockstep/core';
import { Hub } from '@lockstep/server';
import { serveStdio } from '@lockstep/stdio';

const hub = new Hub({ domains: builtInDomains });
const server = serveStdio(hub);
// The sidecar's close() sends SIGTERM: finish cleanly (a durable store would flush here).
process.once('SIGTERM', () => server.close('SIGTERM'));
// stdout carries frames only; this goes to stderr (the guard would reroute a console.log too).
console.error(`hub ${hub.serverId.slice(0, 8)} serving on stdio, pid ${process.pid}`);
const reason = await server.closed;
await hub.close();
console.error(`hub ${hub.serverId.slice(0, 8)} stopping: ${reason}`);

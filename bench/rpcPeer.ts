/**
 * The other process of bench/rpc.bench.ts: one peer per role, serving seed 004's two calls —
 * `orchestrate.route` (served by a hub) and `manager.createPane` (served by a client) — or answering
 * the same method names with vscode-jsonrpc, the baseline.
 *
 *   rpcPeer.ts hub-stdio       a Hub serving `orchestrate` on this process's stdin/stdout
 *   rpcPeer.ts client-stdio    a Lockstep client on this process's stdin/stdout, serving `manager`
 *   rpcPeer.ts vscode-stdio    vscode-jsonrpc on stdin/stdout answering both methods
 *   rpcPeer.ts hub-ws          a Hub serving `orchestrate` on a loopback WebSocket port (token: $LOCKSTEP_TOKEN)
 *   rpcPeer.ts client-ws URL   a Lockstep client connected to URL (token: $LOCKSTEP_TOKEN), serving `manager`
 *   rpcPeer.ts vscode-ws       vscode-jsonrpc over WebSocket messages, one JSON-RPC message per text message
 *
 * The WebSocket servers print `READY <port>` on stdout. Every role exits when its stdin closes.
 */
import { createClient } from '@lockstep/client';
import { Hub, tokenAuthenticator } from '@lockstep/server';
import { createStdioTransport, serveStdio } from '@lockstep/stdio';
import { webSocketConnector } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import { StreamMessageReader, StreamMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';
import { WebSocketServer } from 'ws';
import { benchManager, benchOrchestrate, createPaneAnswer, routeAnswer, webSocketMessageConnection } from './rpcServices.js';

const [role, url] = process.argv.slice(2);
const token = process.env['LOCKSTEP_TOKEN'] ?? '';

/** A hub with nothing but the service: the round trip is the connection's and the service layer's. */
function orchestratorHub(): Hub {
  // No rate limit: back-to-back round trips go past the default 1,000 messages a second.
  const hub = new Hub({ domains: [], rateLimit: false, ...(role === 'hub-ws' && { authenticate: tokenAuthenticator(token) }) });
  hub.serve(benchOrchestrate, { route: ({ command }) => routeAnswer(command) });
  return hub;
}

function answerBoth(connection: MessageConnection): void {
  connection.onRequest(benchOrchestrate.route.method, (params: { command: string }) => routeAnswer(params.command));
  connection.onRequest(benchManager.createPane.method, (params: { command: string }) => createPaneAnswer(params.command));
  connection.listen();
}

let stop: () => Promise<void> | void = () => {};
switch (role) {
  case 'hub-stdio': {
    const hub = orchestratorHub();
    const server = serveStdio(hub, { guardConsole: false });
    stop = async () => {
      await hub.close();
      server.close();
    };
    break;
  }
  case 'client-stdio': {
    const client = createClient({ connect: () => createStdioTransport({ input: process.stdin, output: process.stdout }), clientId: 'bench-manager' });
    client.serve(benchManager, { createPane: ({ command }) => createPaneAnswer(command) });
    stop = () => client.close();
    break;
  }
  case 'vscode-stdio': {
    const connection = createMessageConnection(new StreamMessageReader(process.stdin), new StreamMessageWriter(process.stdout));
    answerBoth(connection);
    stop = () => connection.dispose();
    break;
  }
  case 'hub-ws': {
    const hub = orchestratorHub();
    const server = createWebSocketServer(hub, { port: 0, authenticate: tokenAuthenticator(token) });
    await server.ready;
    process.stdout.write(`READY ${server.address().port}\n`);
    stop = async () => {
      await hub.close();
      await server.close();
    };
    break;
  }
  case 'client-ws': {
    const client = createClient({ connect: webSocketConnector(url!, { token }), clientId: 'bench-manager' });
    client.serve(benchManager, { createPane: ({ command }) => createPaneAnswer(command) });
    stop = () => client.close();
    break;
  }
  case 'vscode-ws': {
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    server.on('connection', (socket) => answerBoth(webSocketMessageConnection(socket)));
    await new Promise((resolve) => server.once('listening', resolve));
    process.stdout.write(`READY ${(server.address() as { port: number }).port}\n`);
    stop = () => new Promise<void>((resolve) => server.close(() => resolve()));
    break;
  }
  default:
    process.stderr.write(`rpcPeer: unknown role ${role}\n`);
    process.exit(2);
}

// The benchmark closes our stdin (or dies): stop. The stdio roles read frames from it as well.
if (!role.endsWith('-stdio')) process.stdin.resume();
process.stdin.once('end', () => {
  void Promise.resolve(stop()).finally(() => process.exit(0));
});

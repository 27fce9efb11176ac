/**
 * One hub process on a PostgreSQL schema, for the multi-process tests (postgresHubs.test.ts):
 * WebSocket on a free loopback port, the built-in domains. Prints `listening ws://…` once ready and
 * logs the store's background trouble (`LISTEN connection lost …`) on stderr.
 *
 *   LOCKSTEP_PG_URL=… HUB_SCHEMA=… HUB_NAME=a [HUB_LISTEN_BACKOFF_MS=50] \
 *     node --conditions=lockstep-source --import tsx packages/tests/src/postgresHubProcess.ts
 */
import { builtInDomains } from '@lockstep/core';
import { PostgresEventStore } from '@lockstep/postgres';
import { Hub } from '@lockstep/server';
import { createWebSocketServer } from '@lockstep/ws/server';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const name = env('HUB_NAME');
const backoffMs = Number(process.env.HUB_LISTEN_BACKOFF_MS ?? 50);

const store = await PostgresEventStore.open({
  connectionString: env('LOCKSTEP_PG_URL'),
  schema: env('HUB_SCHEMA'),
  applicationName: `hub-${name}`,
  listenBackoff: { initialMs: backoffMs, maxMs: backoffMs * 4 },
  onError: (error, context) => console.error(`[hub ${name}] ${context}: ${error instanceof Error ? error.message : String(error)}`),
});
const hub = new Hub({
  domains: builtInDomains,
  store,
  serverId: `hub-${name}`,
  rateLimit: false,
  onError: (error, context) => console.error(`[hub ${name}] ${context}: ${error instanceof Error ? error.message : String(error)}`),
});
const server = createWebSocketServer(hub, { port: 0, host: '127.0.0.1' });
await server.ready;
console.log(`listening ws://127.0.0.1:${server.address().port}`);

const stop = async () => {
  await hub.close();
  await server.close();
  await store.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());

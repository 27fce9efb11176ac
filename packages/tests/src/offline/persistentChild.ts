/**
 * A client process with a file storage, for the SIGKILL test (persistentClientCrash.test.ts):
 *
 *   node persistentChild.mjs <url> <directory> <stream key> <seed> <run> [final]
 *
 * Prints one JSON line per fact: `restored` (what it started from), `durable` (tags whose command
 * is stored: a flush resolved after their dispatch), and in `final` mode `final` (the state once
 * idle). Otherwise it dispatches commands until it is killed.
 */
import { createClient } from '@lockstep/client';
import { fileStorage } from '@lockstep/client/persist-file';
import { createRandom } from '@lockstep/core';
import { webSocketConnector } from '@lockstep/ws';
import { taggedCounter } from './counterDomain.js';

const [url, directory, key, seedText, runText, mode] = process.argv.slice(2) as [string, string, string, string, string, string | undefined];
const random = createRandom(Number(seedText));
const print = (fact: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(fact)}\n`);

const client = createClient({
  connect: webSocketConnector(url),
  persistence: fileStorage({ directory }),
  persistDelayMs: random.int(4),
  random,
  backoff: { initialMs: 5, maxMs: 40 },
  retryDelayMs: 20,
});
await client.restored;
const stream = client.stream(taggedCounter, key);
const error = client.status.lastError as { code?: string; message?: string } | undefined;
print({
  restored: {
    storage: client.status.storage,
    error: error ? `${error.code ?? ''} ${error.message ?? ''}` : null,
    version: stream.version,
    pending: stream.pendingCommands.length,
  },
});

if (mode === 'final') {
  await client.whenIdle();
  print({ final: { ...stream.confirmed, pending: stream.pendingCommands.length } });
  client.close();
  await client.flush();
  process.exit(0);
}

for (let i = 0; ;) {
  const tags: string[] = [];
  for (let n = 1 + random.int(5); n > 0; n--) {
    const tag = `r${runText}-${i++}`;
    tags.push(tag);
    stream.dispatch({ type: 'add', payload: { by: 1, tag } }).catch(() => {});
  }
  if (random.chance(0.5)) {
    await client.flush();
    print({ durable: tags });
  }
  await new Promise((resolve) => setTimeout(resolve, random.int(5)));
}

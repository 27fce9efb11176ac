import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { LockstepError, builtInDomains, createRandom, type AnyDomain, type Random } from '@lockstep/core';
import { FileEventStore, Hub } from '@lockstep/server';
import { checkConvergence, type ChaosStream } from '@lockstep/testkit';
import { webSocketConnector } from '@lockstep/ws';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtInScenario } from './builtInScenario.js';
import { SERVE_TOKEN, serveEnv } from './serveEnv.js';

/**
 * Crash safety of `lockstep serve --store file:DIR`, as users run it: a real child process with
 * WebSocket clients writing to it is killed with SIGKILL at random (seeded) moments and restarted
 * on the same directory, again and again. Then every acknowledged command must be in the log exactly
 * once, the log must hold no damage (a torn tail is cut at open), versions must be contiguous, and
 * every client must converge to the state the log folds to.
 *
 * `pnpm test` runs 120 kills; `pnpm test:soak` (LOCKSTEP_SOAK=1) runs LOCKSTEP_SOAK_KILLS (default
 * 1,000). Replay a failure's delays and commands with LOCKSTEP_SEED=<seed>.
 */
const soak = process.env.LOCKSTEP_SOAK === '1';
const KILLS = soak ? Number(process.env.LOCKSTEP_SOAK_KILLS ?? 1_000) : 120;
const SEED = process.env.LOCKSTEP_SEED ? Number(process.env.LOCKSTEP_SEED) : 0xc2a5;

const work = mkdtempSync(join(tmpdir(), 'lockstep-crash-'));
const bundle = join(work, 'lockstep.mjs');
const children = new Set<ChildProcessWithoutNullStreams>();

beforeAll(async () => {
  // The CLI bundled into one file: a child starts in ~0.1 s instead of ~0.5 s through tsx, so a
  // hundred kills fit in the test run. Same sources, same `main.ts`.
  await build({
    entryPoints: [fileURLToPath(new URL('../../cli/src/main.ts', import.meta.url))],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile: bundle,
    conditions: ['lockstep-source'],
    banner: { js: "import { createRequire as lockstepRequire } from 'node:module'; const require = lockstepRequire(import.meta.url);" },
    logLevel: 'warning',
  });
});

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid!, 'SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/**
 * A free port below Linux's ephemeral range (32768+): the hub restarts on the same port again and
 * again, and a port the kernel hands out for outgoing connections could be taken by a client socket
 * while the hub is down.
 */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + randomInt(12_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

/** Starts `lockstep serve` on the directory; resolves once it listens. */
async function startHub(directory: string, port: number): Promise<{ child: ChildProcessWithoutNullStreams; exited: Promise<number | null>; output(): string }> {
  const child = spawn(process.execPath, [bundle, 'serve', '--port', String(port), '--store', `file:${directory}`], { stdio: 'pipe', env: serveEnv() });
  children.add(child);
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  await new Promise<void>((resolve, reject) => {
    const look = () => output.includes('listening on') && resolve();
    child.stdout.on('data', look);
    void exited.then(() => reject(new Error(`lockstep serve exited before listening:\n${output}`)));
  });
  return { child, exited, output: () => output };
}

interface Outcome {
  state: 'pending' | 'acknowledged' | 'rejected';
  error?: LockstepError;
}

/** Clients that keep a few random commands in flight on their streams, recording every outcome. */
class Writers {
  readonly outcomes = new Map<string, Outcome>();
  readonly clients: LockstepClient[] = [];
  readonly #streams: Array<{ client: LockstepClient; spec: ChaosStream; stream: SyncedStream<AnyDomain> }> = [];
  #sent = 0;
  #acks = 0;
  #writing = true;
  #ackWaiters: Array<() => void> = [];

  constructor(
    url: string,
    private readonly random: Random,
    count: number,
  ) {
    for (let i = 0; i < count; i++) {
      const client = createClient({
        connect: webSocketConnector(url, { token: SERVE_TOKEN }),
        clientId: `crash-${i}`,
        random: createRandom(random.int(2 ** 31)),
        backoff: { initialMs: 5, maxMs: 40 },
        retryDelayMs: 20,
      });
      this.clients.push(client);
      for (const spec of builtInScenario.streams) this.#streams.push({ client, spec, stream: client.stream(spec.domain, spec.key) });
    }
    for (let lane = 0; lane < count * 4; lane++) this.#next();
  }

  get acks(): number {
    return this.#acks;
  }

  /** Resolves at the next acknowledgement (or after `ms`, whichever comes first). */
  nextAck(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#ackWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  stop(): void {
    this.#writing = false;
  }

  #next(): void {
    if (!this.#writing) return;
    const { client, spec, stream } = this.random.pick(this.#streams);
    const command = builtInScenario.nextCommand(this.random, spec, stream.getSnapshot());
    const id = `${client.clientId}.${this.#sent++}`;
    const outcome: Outcome = { state: 'pending' };
    this.outcomes.set(id, outcome);
    stream.dispatch(command as never, { id }).then(
      () => {
        outcome.state = 'acknowledged';
        this.#acks++;
        for (const wake of this.#ackWaiters.splice(0)) wake();
        this.#next();
      },
      (error: unknown) => {
        outcome.state = 'rejected';
        outcome.error = LockstepError.from(error);
        this.#next();
      },
    );
  }
}

/** Hubs killed and restarted side by side, each on its own directory, port and clients. */
const LANES = 3;

describe('lockstep serve --store file: killed with SIGKILL while clients write', () => {
  it(
    `survives ${KILLS} kills (seed ${SEED}): nothing acknowledged lost or doubled, no damage, clients converge`,
    { timeout: soak ? 3_600_000 : 240_000 },
    async () => {
      const reports = await Promise.all(Array.from({ length: LANES }, (_, lane) => crashLane(lane, Math.ceil(KILLS / LANES))));
      const total = reports.reduce((sum, report) => ({ acks: sum.acks + report.acks, torn: sum.torn + report.torn, kills: sum.kills + report.kills }));
      expect(total.kills).toBeGreaterThanOrEqual(KILLS);
      console.log(`${total.kills} kills: ${total.acks} commands acknowledged, ${total.torn} torn tails cut at restart`);
    },
  );
});

/** One directory, one port, three clients: `kills` times start the hub, let it serve, SIGKILL it. */
async function crashLane(lane: number, kills: number): Promise<{ kills: number; acks: number; torn: number }> {
  const random = createRandom(SEED + lane);
  const directory = join(work, `data-${lane}`);
  const port = await freePort();
  const writers = new Writers(`ws://127.0.0.1:${port}`, random, 3);
  let torn = 0;
  let runsWithAcks = 0;
  try {
    for (let kill = 0; kill < kills; kill++) {
      const hub = await startHub(directory, port);
      // Let the clients reconnect and write: wait for an ack, maybe another, then a few milliseconds.
      const acks = writers.acks;
      await writers.nextAck(5_000);
      if (random.chance(0.5)) await writers.nextAck(5_000);
      await new Promise((resolve) => setTimeout(resolve, random.int(8)));
      if (writers.acks > acks) runsWithAcks++;
      hub.child.kill('SIGKILL');
      await hub.exited;
      // The log as the dead hub left it: at most a torn tail, never damage.
      const check = await FileEventStore.repair(directory);
      expect(check.damage, `lane ${lane}, after kill ${kill + 1}: ${JSON.stringify(check)}`).toBeUndefined();
      expect(check.status).toBe('clean');
      if (check.tornTail) torn++;
    }
    // Every run had clients writing when it was killed (else the kills prove little).
    expect(runsWithAcks).toBeGreaterThan(kills * 0.8);

    // The last hub runs until every client has every answer and is in sync.
    const hub = await startHub(directory, port);
    writers.stop();
    await Promise.all(writers.clients.map((client) => client.whenIdle()));
    for (const [id, outcome] of writers.outcomes) expect(outcome.state, `command ${id}`).not.toBe('pending');
    hub.child.kill('SIGTERM');
    expect(await hub.exited).toBe(0);

    // The truth: a hub on the log as it is on disk.
    const store = await FileEventStore.open(directory);
    const truth = new Hub({ domains: builtInDomains, store, onError: () => {} });
    try {
      await checkConvergence(truth, writers.clients, SEED + lane);
      await checkLog(store, writers.outcomes, kills);
    } finally {
      await truth.close();
      await store.close();
    }
    return { kills, acks: writers.acks, torn };
  } finally {
    writers.stop();
    for (const client of writers.clients) client.close();
  }
}

/** Contiguous versions; every acknowledged command recorded and applied exactly once; no refused one applied. */
async function checkLog(store: FileEventStore, outcomes: ReadonlyMap<string, Outcome>, kills: number): Promise<void> {
  const runs = new Map<string, number>();
  for (const spec of builtInScenario.streams) {
    const name = `${spec.domain.name}/${spec.key}`;
    const { head, oldestRetained } = await store.info(name);
    expect(oldestRetained, name).toBe(1);
    const events = await store.read(name, 1, Number.MAX_SAFE_INTEGER);
    expect(events.map((event) => event.version)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    let previous: string | undefined;
    for (const event of events) {
      const id = event.commandId ?? '';
      if (id !== previous) runs.set(id, (runs.get(id) ?? 0) + 1);
      previous = id;
    }
  }
  const recorded = await store.findCommands([...outcomes.keys()]);
  let acknowledged = 0;
  for (const [id, outcome] of outcomes) {
    if (outcome.state === 'acknowledged') {
      acknowledged++;
      expect(recorded.has(id), `acknowledged command ${id} is in the log`).toBe(true);
      expect(recorded.get(id)?.refusal, `acknowledged command ${id} is not recorded as refused`).toBeUndefined();
      expect(runs.get(id) ?? 0, `acknowledged command ${id} applied once`).toBeLessThanOrEqual(1);
    } else {
      expect(runs.has(id), `refused command ${id} (${outcome.error?.code}) is not in the log`).toBe(false);
      const record = recorded.get(id);
      if (record) expect(record.refusal?.code, `refused command ${id} is recorded as refused`).toBe(outcome.error?.code);
      expect(['UNAVAILABLE', 'INTERNAL_ERROR'], `command ${id}: ${outcome.error?.message}`).not.toContain(outcome.error?.code);
    }
  }
  expect(acknowledged).toBeGreaterThan(kills);
}

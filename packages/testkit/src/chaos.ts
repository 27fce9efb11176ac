import { LockstepClient, type SyncedStream } from '@lockstep/client';
import {
  LockstepError,
  canonicalJson,
  createMemoryLink,
  createRandom,
  streamName,
  type AnyDomain,
  type Event,
  type Codec,
  type LinkFaults,
  type Random,
  type Transport,
} from '@lockstep/core';
import { Hub, MemoryEventStore, type EventStore, type HubOptions } from '@lockstep/server';
import { FakeClock } from './fakeClock.js';
import { faultyTransport } from './faultyTransport.js';

export interface ChaosStream {
  domain: AnyDomain;
  key: string;
}

/** What a chaos run drives: the streams, and how to make up a command for one of them. */
export interface ChaosScenario {
  streams: readonly ChaosStream[];
  /**
   * A random command for `stream`, given the state the client currently shows. Commands that the
   * hub will refuse are welcome: rejections are part of what is checked.
   */
  nextCommand(random: Random, stream: ChaosStream, state: unknown): { type: string; payload: unknown };
}

export interface ChaosOptions {
  seed: number;
  /** Default 20. */
  clients?: number;
  /** Default 10,000. */
  commands?: number;
  /** Faults of every link while the run lasts. Default: 1% drop, 1% duplicate, 3% reordered, 0–2 ms delay. */
  faults?: LinkFaults;
  /** Chance per step that a random connection is cut. Default 0.003. */
  disconnectChance?: number;
  /** Chance per step that the hub is stopped and restarted from its store. Default 0.0008. */
  restartChance?: number;
  /** Chance that a command carries `expectedVersion` (the client's confirmed version). Default 0.05. */
  expectedVersionChance?: number;
  /**
   * Hubs sharing the store, as several processes on one database would; each connection goes to a
   * random one, and a restart restarts a random one. Needs a store with `watch`. Default 1.
   */
  hubs?: number;
  /**
   * How a (re)connecting client picks one of several hubs: `random` (default), as a load balancer
   * without affinity does, or `sticky`: client i always goes to hub i mod N (a restarted hub's
   * successor included), as one with affinity does.
   */
  hubAffinity?: 'random' | 'sticky';
  /** Extra hub options (for example a small `snapshotEvery`). */
  hub?: Partial<HubOptions>;
  /** The store to use (and restart the hub on). Default a new MemoryEventStore. */
  store?: EventStore;
  /**
   * Opens a connection to one of the hubs over a transport of your choice (a real WebSocket, a stdio
   * pipe): serve `hub` — an acceptor standing for hub number `hubIndex`, which routes to whichever hub
   * holds that place after restarts — and return the client's end. The run wraps every connection in
   * {@link faultyTransport}, so the faults and cuts apply as on memory links. Default: a memory link
   * straight to the hub.
   */
  connect?: ChaosConnect;
  /** The codec of the transports `connect` opens, for the clients. Default JSON. */
  codec?: Codec;
}

/** Routes a connection to the hub that currently holds one place (`hubIndex`) of a chaos run. */
export interface ChaosHubAcceptor {
  readonly hubIndex: number;
  accept(transport: Transport, options?: Parameters<Hub['accept']>[1]): void;
}

/** See {@link ChaosOptions.connect}. */
export type ChaosConnect = (hub: ChaosHubAcceptor, clientIndex: number) => Transport | Promise<Transport>;

/** What a run can cut and heal: a memory link or a {@link FaultyTransport}. */
interface Cuttable {
  setFaults(faults: LinkFaults): void;
  disconnect(reason?: string): void;
}

export const CHAOS_DEFAULT_FAULTS: LinkFaults = { drop: 0.01, duplicate: 0.01, reorder: 0.03, reorderWindowMs: 5, delayMs: [0, 2] };

export interface ChaosReport {
  seed: number;
  commands: number;
  acknowledged: number;
  rejected: number;
  duplicateAcks: number;
  disconnects: number;
  restarts: number;
  /** Final version of every stream. */
  versions: Record<string, number>;
  /** Fake milliseconds the run took. */
  elapsedMs: number;
}

/** A convergence failure, with the seed that replays it. */
export class ConvergenceError extends Error {
  override readonly name = 'ConvergenceError';
  constructor(
    readonly seed: number,
    message: string,
  ) {
    super(`[seed ${seed}] ${message} — replay with seed ${seed}`);
  }
}

interface Outcome {
  stream: string;
  state: 'pending' | 'acknowledged' | 'rejected';
  error?: LockstepError;
}

/**
 * Runs a seeded chaos scenario: clients over faulty in-memory links send random commands while
 * connections are cut and the hub restarts from its store; then the network heals and the run
 * checks that every client converged to the hub and that the log is exactly right.
 * Throws a {@link ConvergenceError} naming the seed on any failure.
 */
export async function runChaos(scenario: ChaosScenario, options: ChaosOptions): Promise<ChaosReport> {
  const { seed } = options;
  const random = createRandom(seed);
  const clock = new FakeClock();
  const store = options.store ?? new MemoryEventStore();
  const domains = [...new Set(scenario.streams.map((s) => s.domain))];
  const makeHub = () => new Hub({ domains, store, clock, onError: () => {}, ...options.hub });
  const hubs = Array.from({ length: options.hubs ?? 1 }, makeHub);
  let faults = options.faults ?? CHAOS_DEFAULT_FAULTS;
  const links = new Set<Cuttable>();
  const report: ChaosReport = {
    seed,
    commands: 0,
    acknowledged: 0,
    rejected: 0,
    duplicateAcks: 0,
    disconnects: 0,
    restarts: 0,
    versions: {},
    elapsedMs: 0,
  };
  const started = clock.now();

  const connect = (clientIndex: number) => {
    const link = createMemoryLink({ faults, random: createRandom(random.int(2 ** 31)), clock });
    links.add(link);
    link.client.state.subscribe((state) => {
      if (state.status === 'closed') links.delete(link);
    });
    (options.hubAffinity === 'sticky' ? hubs[clientIndex % hubs.length]! : random.pick(hubs)).accept(link.server);
    return link.client;
  };

  // With a connect factory: one acceptor per hub place, so that a restarted hub takes the place's
  // connections (a WebSocket server made for the place keeps serving the place's current hub).
  const acceptors: ChaosHubAcceptor[] = hubs.map((_, hubIndex) => ({
    hubIndex,
    accept: (transport, acceptOptions) => hubs[hubIndex]!.accept(transport, acceptOptions),
  }));
  const connectWith = async (factory: ChaosConnect, clientIndex: number): Promise<Transport> => {
    const linkRandom = createRandom(random.int(2 ** 31));
    const acceptor = options.hubAffinity === 'sticky' ? acceptors[clientIndex % acceptors.length]! : random.pick(acceptors);
    const transport = faultyTransport(await factory(acceptor, clientIndex), { faults, random: linkRandom, clock });
    links.add(transport);
    transport.state.subscribe((state) => {
      if (state.status === 'closed') links.delete(transport);
    });
    return transport;
  };

  const clients: Array<{ client: LockstepClient; streams: Array<{ spec: ChaosStream; stream: SyncedStream<AnyDomain> }> }> = [];
  for (let i = 0; i < (options.clients ?? 20); i++) {
    const factory = options.connect;
    const client = new LockstepClient({
      connect: factory ? () => connectWith(factory, i) : () => connect(i),
      ...(options.codec && { codec: options.codec }),
      clock,
      clientId: `chaos-${i}`,
      random: createRandom(random.int(2 ** 31)),
      requestTimeoutMs: 2_000,
      backoff: { initialMs: 5, maxMs: 500 },
      retryDelayMs: 50,
    });
    // Every client follows a random, non-empty subset of the streams.
    const chosen = scenario.streams.filter(() => random.chance(0.7));
    if (chosen.length === 0) chosen.push(random.pick(scenario.streams));
    clients.push({ client, streams: chosen.map((spec) => ({ spec, stream: client.stream(spec.domain, spec.key) })) });
  }

  const outcomes = new Map<string, Outcome>();
  const commands = options.commands ?? 10_000;
  const disconnectChance = options.disconnectChance ?? 0.003;
  const restartChance = options.restartChance ?? 0.0008;
  const expectedVersionChance = options.expectedVersionChance ?? 0.05;

  let sent = 0;
  while (sent < commands) {
    const burst = 1 + random.int(4);
    for (let b = 0; b < burst && sent < commands; b++, sent++) {
      const { client, streams } = random.pick(clients);
      const { spec, stream } = random.pick(streams);
      const command = scenario.nextCommand(random, spec, stream.getSnapshot());
      const id = `${client.clientId}.${sent}`;
      const outcome: Outcome = { stream: stream.name, state: 'pending' };
      outcomes.set(id, outcome);
      const dispatchOptions = random.chance(expectedVersionChance) ? { id, expectedVersion: stream.version } : { id };
      stream.dispatch(command as never, dispatchOptions).then(
        (ack) => {
          outcome.state = 'acknowledged';
          if (ack.duplicate) report.duplicateAcks++;
        },
        (error: unknown) => {
          outcome.state = 'rejected';
          outcome.error = LockstepError.from(error);
        },
      );
    }
    if (random.chance(disconnectChance) && links.size > 0) {
      random.pick([...links]).disconnect('chaos: link cut');
      report.disconnects++;
    }
    if (random.chance(restartChance)) {
      const index = random.int(hubs.length);
      await hubs[index]!.close();
      hubs[index] = makeHub();
      report.restarts++;
    }
    await clock.advance(random.int(3));
  }

  // The network heals. A lossy link can swallow the last notification of a quiet stream, which only
  // a new connection reveals; real transports close instead of losing frames, so every client
  // reconnects once, as it would after any network trouble.
  faults = {};
  for (const link of links) link.setFaults({});
  await clock.advance(5_000);
  for (const { client } of clients) client.disconnect('chaos: network healed');
  const fail = (message: string): never => {
    throw new ConvergenceError(seed, message);
  };
  try {
    await clock.advanceUntil(
      () =>
        clients.every(
          ({ client, streams }) => client.status.status === 'online' && streams.every(({ stream }) => stream.synced && stream.pendingCommands.length === 0),
        ),
      { stepMs: 50, timeoutMs: 600_000 },
    );
  } catch {
    const stuck = clients
      .filter(({ client, streams }) => client.status.status !== 'online' || streams.some(({ stream }) => !stream.synced || stream.pendingCommands.length > 0))
      .map(
        ({ client, streams }) =>
          `${client.clientId}: ${client.status.status}, ${streams.map(({ stream }) => `${stream.name} ${JSON.stringify(stream.getStatus())}`).join('; ')}`,
      );
    fail(`clients did not settle after the network healed:\n${stuck.slice(0, 5).join('\n')}`);
  }
  if (hubs.length > 1) await settleAcrossHubs(hubs, store, scenario, clients, clock, fail);
  report.elapsedMs = clock.now() - started;

  // Every command ended, one way or the other.
  for (const [id, outcome] of outcomes) {
    if (outcome.state === 'pending') fail(`command ${id} never settled`);
    if (outcome.state === 'acknowledged') report.acknowledged++;
    else report.rejected++;
  }
  report.commands = outcomes.size;

  for (const hub of hubs)
    await checkConvergence(
      hub,
      clients.map(({ client }) => client),
      seed,
    );
  await checkLog(store, scenario, outcomes, report, seed);

  for (const { client } of clients) client.close();
  for (const hub of hubs) await hub.close();
  return report;
}

/**
 * With several hubs on one store, an append by one hub reaches the others — and their clients — a
 * moment later (the store's `watch`, then a read). With a store that does real I/O that moment is
 * real time, and a client cannot know it is waiting for it, so "every client settled" is not enough:
 * this waits until every hub and every client holds every stream at the store's head, and the heads
 * have stopped moving.
 */
async function settleAcrossHubs(
  hubs: readonly Hub[],
  store: EventStore,
  scenario: ChaosScenario,
  clients: ReadonlyArray<{ client: LockstepClient; streams: ReadonlyArray<{ stream: SyncedStream<AnyDomain> }> }>,
  clock: FakeClock,
  fail: (message: string) => never,
): Promise<void> {
  const names = scenario.streams.map((spec) => streamName(spec.domain.name, spec.key));
  const heads = async () => new Map(await Promise.all(names.map(async (name) => [name, (await store.info(name)).head] as const)));
  for (let round = 0; round < 20; round++) {
    const expected = await heads();
    const atHeads = async (): Promise<boolean> => {
      for (const hub of hubs) {
        for (const [name, head] of expected) if ((await hub.read(name)).version !== head) return false;
      }
      return clients.every(
        ({ client, streams }) =>
          client.status.status === 'online' &&
          streams.every(({ stream }) => stream.synced && stream.pendingCommands.length === 0 && stream.version === expected.get(stream.name)),
      );
    };
    let reached = false;
    let moved = false;
    for (let step = 0; step < 12_000 && !(reached = await atHeads()); step++) {
      await clock.advance(50);
      // A head that moved meanwhile (a lease expiring, an append that was still on its way to disk
      // when the heads were read) is a new target: waiting for the old one would never end.
      if (step % 20 === 19 && !sameHeads(await heads(), expected)) {
        moved = true;
        break;
      }
    }
    if (moved) continue;
    if (!reached) {
      const behind: string[] = [];
      for (const [index, hub] of hubs.entries()) {
        for (const [name, head] of expected) {
          const { version } = await hub.read(name);
          if (version !== head) behind.push(`hub ${index} ${name} at ${version}`);
        }
      }
      for (const { client, streams } of clients) {
        for (const { stream } of streams) {
          if (stream.version !== expected.get(stream.name)) behind.push(`${client.clientId} ${stream.name} at ${stream.version} (${client.status.status})`);
        }
      }
      const now = JSON.stringify(Object.fromEntries(await heads()));
      fail(`hubs and clients did not reach the store's heads ${JSON.stringify(Object.fromEntries(expected))} (now ${now}): ${behind.slice(0, 8).join('; ')}`);
    }
    if (sameHeads(await heads(), expected)) return;
  }
  fail("the store's heads kept moving after the clients settled");
}

function sameHeads(a: ReadonlyMap<string, number>, b: ReadonlyMap<string, number>): boolean {
  for (const [name, head] of a) if (b.get(name) !== head) return false;
  return true;
}

/** Every client's confirmed and visible state of every stream it follows equals the hub's. */
export async function checkConvergence(hub: Hub, clients: readonly LockstepClient[], seed = 0): Promise<void> {
  for (const client of clients) {
    for (const stream of client.streams.values()) {
      const truth = await hub.read(stream.name);
      const confirmed = stream.confirmed;
      if (confirmed.version !== truth.version) {
        throw new ConvergenceError(seed, `${client.clientId} has ${stream.name} at version ${confirmed.version}, the hub at ${truth.version}`);
      }
      const expected = canonicalJson(truth.state);
      if (canonicalJson(confirmed.state) !== expected) {
        throw new ConvergenceError(seed, `${client.clientId} diverged on ${stream.name} at version ${truth.version}`);
      }
      if (canonicalJson(stream.getSnapshot()) !== expected) {
        throw new ConvergenceError(seed, `${client.clientId} shows a view of ${stream.name} that differs from its confirmed state`);
      }
    }
  }
}

async function checkLog(store: EventStore, scenario: ChaosScenario, outcomes: ReadonlyMap<string, Outcome>, report: ChaosReport, seed: number): Promise<void> {
  const fail = (message: string): never => {
    throw new ConvergenceError(seed, message);
  };
  const runs = new Map<string, number>();
  for (const spec of scenario.streams) {
    const name = streamName(spec.domain.name, spec.key);
    const { head, oldestRetained } = await store.info(name);
    if (oldestRetained !== 1 && head > 0) fail(`${name}: events before ${oldestRetained} were compacted; the check needs the whole log`);
    const events: Event[] = await store.read(name, 1, Number.MAX_SAFE_INTEGER);
    report.versions[name] = head;
    let previousCommand: string | undefined;
    events.forEach((event, index) => {
      if (event.version !== index + 1) fail(`${name}: version ${event.version} at position ${index + 1}`);
      const commandId = event.commandId ?? '';
      if (commandId !== previousCommand) runs.set(commandId, (runs.get(commandId) ?? 0) + 1);
      previousCommand = commandId;
    });
    if (events.length !== head) fail(`${name}: head ${head} but ${events.length} events`);
  }
  const ids = [...outcomes.keys()];
  const recorded = await store.findCommands(ids);
  for (const [id, outcome] of outcomes) {
    const record = recorded.get(id);
    if (outcome.state === 'acknowledged') {
      if (!record) return fail(`acknowledged command ${id} is not recorded in the store`);
      if (record.refusal) fail(`acknowledged command ${id} is recorded as refused (${record.refusal.code})`);
      if ((runs.get(id) ?? 0) > 1) fail(`acknowledged command ${id} was applied ${runs.get(id)} times`);
    } else {
      if (runs.has(id)) fail(`command ${id} was refused (${outcome.error?.code}) yet reached the log`);
      // A refusal that depends on the state is recorded with it; the client was told the same.
      if (record && !record.refusal) fail(`command ${id} was refused (${outcome.error?.code}) yet is recorded as applied`);
      if (record?.refusal && record.refusal.code !== outcome.error?.code) {
        fail(`command ${id} was refused with ${outcome.error?.code}, but the store recorded ${record.refusal.code}`);
      }
      if (outcome.error?.code === 'UNAVAILABLE' || outcome.error?.code === 'INTERNAL_ERROR') {
        fail(`command ${id} failed with an error that must not happen in a healthy run: ${outcome.error.message}`);
      }
    }
  }
}

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createClient, type LockstepClient, type SyncedStream } from '@lockstep/client';
import { LockstepError, canonicalJson, createRandom, orchestrationDomain, streamName, type AnyDomain, type Random } from '@lockstep/core';
import { PostgresEventStore } from '@lockstep/postgres';
import { describePostgres, type PostgresTestDatabase } from '@lockstep/postgres/testing';
import type { ChaosStream } from '@lockstep/testkit';
import { webSocketConnector, webSocketTransport } from '@lockstep/ws';
import { afterEach, expect, it } from 'vitest';
import { builtInScenario } from './builtInScenario.js';

/**
 * Several hub processes on one PostgreSQL schema, with WebSocket clients on each: they converge,
 * optimistic concurrency holds across hubs, clients of a killed hub carry on at another one, and a
 * hub whose LISTEN connection was cut still learns what the others appended meanwhile.
 */
const require = createRequire(import.meta.url);
const TSX = pathToFileURL(require.resolve('tsx')).href;
const HUB_SCRIPT = fileURLToPath(new URL('./postgresHubProcess.ts', import.meta.url));

interface HubProcess {
  name: string;
  url: string;
  child: ChildProcessWithoutNullStreams;
  stderr(): string;
  exited: Promise<NodeJS.Signals | number | null>;
}

const children = new Set<ChildProcessWithoutNullStreams>();
const clients = new Set<LockstepClient>();
afterEach(async () => {
  for (const client of clients) client.close();
  clients.clear();
  const exits = [...children].map(
    (child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once('exit', resolve))),
  );
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await Promise.all(exits);
  children.clear();
});

async function startHub(db: PostgresTestDatabase, schema: string, name: string, env: Record<string, string> = {}): Promise<HubProcess> {
  const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', TSX, HUB_SCRIPT], {
    env: { ...process.env, LOCKSTEP_PG_URL: db.url, HUB_SCHEMA: schema, HUB_NAME: name, ...env },
    stdio: 'pipe',
  });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once('exit', (code, signal) => resolve(signal ?? code)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening (ws:\/\/\S+)/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    void exited.then((code) => reject(new Error(`hub ${name} exited (${code}) before listening:\n${stdout}${stderr}`)));
  });
  return { name, url, child, stderr: () => stderr, exited };
}

type Connect = () => ReturnType<ReturnType<typeof webSocketConnector>>;

function client(connect: Connect): LockstepClient {
  const made = createClient({ connect, backoff: { initialMs: 20, maxMs: 250 }, retryDelayMs: 50, requestTimeoutMs: 5_000 });
  clients.add(made);
  return made;
}

interface Follower {
  client: LockstepClient;
  streams: Array<{ spec: ChaosStream; stream: SyncedStream<AnyDomain> }>;
}

function follow(made: LockstepClient): Follower {
  return { client: made, streams: builtInScenario.streams.map((spec) => ({ spec, stream: made.stream(spec.domain, spec.key) })) };
}

interface Outcome {
  stream: string;
  state: 'pending' | 'acknowledged' | 'rejected';
  /** Acknowledged as a duplicate: the hub had it already (a retry after a lost answer). */
  duplicate?: boolean;
  error?: LockstepError;
}

/** Random commands of the built-in scenario from random followers; answers every command's outcome. */
async function drive(
  followers: readonly Follower[],
  random: Random,
  count: number,
  tag: string,
  during?: (sent: number, outcomes: ReadonlyMap<string, Outcome>) => Promise<void>,
) {
  const outcomes = new Map<string, Outcome>();
  const settled: Array<Promise<unknown>> = [];
  for (let sent = 0; sent < count; sent++) {
    const { streams } = random.pick(followers);
    const { spec, stream } = random.pick(streams);
    const command = builtInScenario.nextCommand(random, spec, stream.getSnapshot());
    const id = `${tag}.${sent}`;
    const outcome: Outcome = { stream: stream.name, state: 'pending' };
    outcomes.set(id, outcome);
    const options = random.chance(0.05) ? { id, expectedVersion: stream.version } : { id };
    settled.push(
      stream.dispatch(command as never, options).then(
        (ack) => {
          outcome.state = 'acknowledged';
          if (ack.duplicate) outcome.duplicate = true;
        },
        (error: unknown) => {
          outcome.state = 'rejected';
          outcome.error = LockstepError.from(error);
        },
      ),
    );
    if (sent % 8 === 7) await sleep(1);
    await during?.(sent, outcomes);
  }
  await Promise.all(settled);
  return outcomes;
}

/** Polls until `done` holds (no timing assertion: gives up only after a generous while). */
async function eventually(done: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 1_500; i++) {
    if (await done()) return;
    await sleep(20);
  }
  throw new Error(`gave up waiting for ${what}`);
}

/**
 * Every follower (and one observer per hub, standing in for that hub's GET) shows every stream at
 * the store's head with the same state; the log has contiguous versions, every acknowledged command
 * exactly once and no refused one.
 */
async function expectConverged(store: PostgresEventStore, followers: readonly Follower[], outcomes: ReadonlyMap<string, Outcome>): Promise<void> {
  const heads = new Map<string, number>();
  for (const spec of builtInScenario.streams) {
    const name = streamName(spec.domain.name, spec.key);
    heads.set(name, (await store.info(name)).head);
  }
  await eventually(
    () =>
      followers.every(
        ({ client: made, streams }) =>
          made.status.status === 'online' &&
          streams.every(({ stream }) => stream.synced && stream.pendingCommands.length === 0 && stream.version === heads.get(stream.name)),
      ),
    `every client at the heads ${JSON.stringify(Object.fromEntries(heads))}`,
  );
  for (const { spec, stream } of followers[0]!.streams) {
    const expected = canonicalJson(stream.confirmed.state);
    for (const other of followers) {
      const same = other.streams.find((each) => each.spec === spec)!.stream;
      expect(canonicalJson(same.confirmed.state), `${other.client.clientId} on ${stream.name}`).toBe(expected);
      expect(canonicalJson(same.getSnapshot())).toBe(expected);
    }
  }

  const runs = new Map<string, number>();
  for (const [name, head] of heads) {
    const events = await store.read(name, 1, Number.MAX_SAFE_INTEGER);
    expect(events.map((event) => event.version)).toEqual(Array.from({ length: head }, (_, i) => i + 1));
    let previous: string | undefined;
    for (const event of events) {
      if (event.commandId !== previous && event.commandId !== undefined) runs.set(event.commandId, (runs.get(event.commandId) ?? 0) + 1);
      previous = event.commandId;
    }
  }
  const records = await store.findCommands([...outcomes.keys()]);
  for (const [id, outcome] of outcomes) {
    expect(outcome.state, id).not.toBe('pending');
    if (outcome.state === 'acknowledged') {
      expect(records.get(id)?.stream, `acknowledged ${id} is recorded`).toBe(outcome.stream);
      expect(records.get(id)?.refusal, `acknowledged ${id} is not recorded as refused`).toBeUndefined();
      expect(runs.get(id) ?? 0, `acknowledged ${id} applied at most once`).toBeLessThanOrEqual(1);
    } else {
      expect(runs.has(id), `refused ${id} (${outcome.error?.code}) is not in the log`).toBe(false);
      // A refusal is recorded with the same code the client was told, or (a malformed payload) not at all.
      const record = records.get(id);
      if (record) expect(record.refusal?.code, `refused ${id} is recorded as refused`).toBe(outcome.error?.code);
      expect(['UNAVAILABLE', 'INTERNAL_ERROR']).not.toContain(outcome.error?.code);
    }
  }
}

describePostgres('hub processes on one PostgreSQL schema', (db) => {
  it('two hubs with WebSocket clients on each, issuing random commands, converge', async () => {
    const schema = db.schema();
    const [a, b] = await Promise.all([startHub(db, schema, 'a'), startHub(db, schema, 'b')]);
    const followers = [a, b, a, b, a, b].map((hub) => follow(client(webSocketConnector(hub.url))));
    const outcomes = await drive(followers, createRandom(0x5eed), 600, 'conv');
    const acknowledged = [...outcomes.values()].filter((outcome) => outcome.state === 'acknowledged').length;
    expect(acknowledged).toBeGreaterThan(200);
    // One observer per hub stands in for that hub's GET.
    const observers = [a, b].map((hub) => follow(client(webSocketConnector(hub.url))));
    const store = await db.open({ schema });
    await expectConverged(store, [...followers, ...observers], outcomes);
    expect(a.stderr() + b.stderr()).toBe('');
  });

  it('50 concurrent writers with the same expectedVersion, across two hubs: exactly one winner per version', async () => {
    const schema = db.schema();
    const [a, b] = await Promise.all([startHub(db, schema, 'a'), startHub(db, schema, 'b')]);
    const writers = Array.from({ length: 50 }, (_, i) => client(webSocketConnector((i % 2 ? b : a).url)).stream(orchestrationDomain, 'default'));
    let version = 0;
    for (let round = 1; round <= 5; round++) {
      await eventually(() => writers.every((writer) => writer.synced && writer.version === version), `every writer at version ${version}`);
      const results = await Promise.allSettled(
        writers.map((writer, i) =>
          writer.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: `ws-${i}`, desired: round } }, { expectedVersion: version }),
        ),
      );
      const winners = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      expect(winners).toHaveLength(1);
      expect(winners[0]!.version).toBe(version + 1);
      for (const result of results) {
        if (result.status === 'rejected') expect(LockstepError.from(result.reason).code).toBe('VERSION_CONFLICT');
      }
      version = winners[0]!.version;
    }
    const store = await db.open({ schema });
    expect(await store.info('orchestration/default')).toEqual({ head: 5, oldestRetained: 1 });
  });

  it('clients of a hub killed with SIGKILL carry on at the other hub, losing nothing acknowledged', async () => {
    const schema = db.schema();
    const [a, b] = await Promise.all([startHub(db, schema, 'a'), startHub(db, schema, 'b')]);
    // Each client starts on hub a; every reconnect tries the other address.
    const failover = (): Connect => {
      let attempt = 0;
      return () => webSocketTransport([a.url, b.url][attempt++ % 2]!);
    };
    const followers = Array.from({ length: 4 }, () => follow(client(failover())));
    const observer = follow(client(webSocketConnector(b.url)));
    await Promise.all(followers.map(({ client: made }) => made.whenIdle()));
    let acknowledgedBeforeKill = 0;
    let pendingAtKill = 0;
    const outcomes = await drive(followers, createRandom(0x1c11), 500, 'kill', async (sent, sofar) => {
      if (sent !== 250) return;
      // Some acknowledged by a, some still in flight: a dies mid-stream.
      await eventually(() => [...sofar.values()].filter((o) => o.state === 'acknowledged').length >= 50, 'hub a acknowledging');
      a.child.kill('SIGKILL');
      expect(await a.exited).toBe('SIGKILL');
      acknowledgedBeforeKill = [...sofar.values()].filter((o) => o.state === 'acknowledged').length;
      pendingAtKill = [...sofar.values()].filter((o) => o.state === 'pending').length;
    });
    expect(acknowledgedBeforeKill).toBeGreaterThanOrEqual(50);
    const store = await db.open({ schema });
    await expectConverged(store, [...followers, observer], outcomes);
    expect(b.stderr()).toBe('');
    const all = [...outcomes.values()];
    console.log(
      `kill: ${acknowledgedBeforeKill} acknowledged and ${pendingAtKill} pending when hub a died; in the end ${all.filter((o) => o.state === 'acknowledged').length} acknowledged, ${all.filter((o) => o.duplicate).length} as duplicates (retried at hub b)`,
    );
  });

  it('a hub whose LISTEN connection is cut catches up with what the other hub appended meanwhile', async () => {
    const schema = db.schema();
    // Hub a waits 0.5–1 s before reconnecting: the other hub's appends fall into that window.
    const [a, b] = await Promise.all([startHub(db, schema, 'a', { HUB_LISTEN_BACKOFF_MS: '1000' }), startHub(db, schema, 'b')]);
    const onA = client(webSocketConnector(a.url)).stream(orchestrationDomain, 'default');
    const onB = client(webSocketConnector(b.url)).stream(orchestrationDomain, 'default');
    await onB.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: 'before', desired: 1 } });
    await onA.waitFor(1);
    const listenOf = (hub: HubProcess) => db.sql(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [`hub-${hub.name}:listen`]);
    await eventually(async () => (await listenOf(a)).length === 1, 'hub a listening');

    for (let round = 1; round <= 2; round++) {
      const lost = a.stderr().split('LISTEN connection lost').length;
      const [{ ok }] = (await db.sql<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`, [
        `hub-a:listen`,
      ])) as [{ ok: boolean }];
      expect(ok).toBe(true);
      await eventually(() => a.stderr().split('LISTEN connection lost').length > lost, 'hub a noticing');
      for (let i = 0; i < 5; i++) await onB.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: `during-${round}-${i}`, desired: i } });
      await onA.waitFor(onB.version);
      expect(canonicalJson(onA.confirmed.state)).toBe(canonicalJson(onB.confirmed.state));
      await eventually(async () => (await listenOf(a)).length === 1, 'hub a listening again');
    }
    // And it still follows live appends afterwards.
    await onB.dispatch({ type: 'workspace.setDesired', payload: { workspaceId: 'after', desired: 2 } });
    await onA.waitFor(onB.version);
    expect(onA.getSnapshot().workspaces['after']?.desired).toBe(2);
  });
});

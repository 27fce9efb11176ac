import { ErrorCodes, createRandom, type Random } from '@lockstep/core';
import { Hub, type Identity, type StreamAction } from '@lockstep/server';
import { counterDomain } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';
import { MemoryWire, type HubMessage } from './memoryWire.js';

/**
 * Tenancy under random traffic: tenants are granted read and write access to some streams by the
 * hub's authorize hook; 12 connections (two per tenant) run over 10,000 random operations — subscribe
 * (with and without since), unsubscribe, commands on any stream, reconnects — and no event of a stream
 * ever reaches a connection whose tenant may not read it, no refused write changes a stream, and
 * every refusal is FORBIDDEN. A failure prints its seed; replay it with LOCKSTEP_SEED=<seed>.
 */

const STREAMS = Array.from({ length: 12 }, (_, i) => `counter/t${i}`);
const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];
const OPERATIONS = Number(process.env.OPS ?? 10_000);

interface Grants {
  read: Map<string, Set<string>>;
  write: Map<string, Set<string>>;
}

function grantsFor(random: Random): Grants {
  const read = new Map<string, Set<string>>();
  const write = new Map<string, Set<string>>();
  for (const tenant of TENANTS) {
    // Some streams readable, some of those (and now and then one not readable) writable.
    const readable = new Set(STREAMS.filter(() => random.chance(0.35)));
    const writable = new Set([...readable].filter(() => random.chance(0.6)));
    if (random.chance(0.5)) writable.add(random.pick(STREAMS));
    read.set(tenant, readable);
    write.set(tenant, writable);
  }
  return { read, write };
}

interface Client {
  tenant: string;
  wire: MemoryWire;
  /** Messages of earlier connections of this client, already checked. */
  checked: number;
}

async function run(seed: number): Promise<{ forbidden: number; delivered: number; acked: number }> {
  const random = createRandom(seed);
  const grants = grantsFor(random);
  const allowed = (identity: Identity | undefined, stream: string, action: StreamAction) =>
    identity !== undefined && (action === 'read' ? grants.read : grants.write).get(identity.id)!.has(stream);
  const errors: unknown[] = [];
  const hub = new Hub({
    domains: [counterDomain],
    authenticate: ({ token }) => (token !== undefined && TENANTS.includes(token) ? { id: token } : undefined),
    authorize: allowed,
    rateLimit: false,
    onError: (error) => errors.push(error),
  });
  let forbidden = 0;
  let delivered = 0;
  let acked = 0;
  let commandIds = 0;
  /** Every command sent: who sent it, to which stream. */
  const sent = new Map<string, { tenant: string; stream: string }>();
  const acknowledged = new Set<string>();

  const open = async (tenant: string): Promise<MemoryWire> => {
    const wire = new MemoryWire(hub);
    const hello = await wire.call('hello', { protocol: 1, token: tenant, clientId: `${tenant}-${random.int(1e9)}` });
    expect(hello.result).toBeDefined();
    return wire;
  };
  const clients: Client[] = [];
  for (const tenant of TENANTS) for (let i = 0; i < 2; i++) clients.push({ tenant, wire: await open(tenant), checked: 0 });

  /** Every message a connection has received so far: only streams its tenant may read. */
  const check = (client: Client) => {
    const messages = client.wire.received;
    for (let i = client.checked; i < messages.length; i++) {
      const message = messages[i]!;
      const stream = streamOf(message);
      if (stream === undefined) continue;
      if (!grants.read.get(client.tenant)!.has(stream)) {
        throw new Error(`seed ${seed}: ${client.tenant} received ${JSON.stringify(message).slice(0, 200)} of ${stream}, which it may not read`);
      }
      if (message.method === 'events') delivered += message.params.events.length;
    }
    client.checked = messages.length;
  };

  const operation = async (client: Client): Promise<void> => {
    const stream = random.pick(STREAMS);
    const roll = random.next();
    const mayRead = grants.read.get(client.tenant)!.has(stream);
    const mayWrite = grants.write.get(client.tenant)!.has(stream);
    if (roll < 0.3) {
      const since = random.chance(0.5) ? random.int(50) : undefined;
      const answer = await client.wire.call('subscribe', since === undefined ? { stream } : { stream, since });
      if (lostWithItsConnection(answer)) return;
      // A subscribe overtaken by a later (un)subscribe of the same stream on the same connection gives up.
      if (mayRead) expect(answer.result ?? answer.error?.code, `seed ${seed}: ${JSON.stringify(answer)}`).not.toBe(undefined);
      if (mayRead && answer.error) expect(answer.error).toMatchObject({ code: ErrorCodes.UNAVAILABLE, message: 'subscription superseded' });
      if (!mayRead) expectForbidden(answer, stream, 'read');
    } else if (roll < 0.4) {
      await client.wire.call('unsubscribe', { stream });
    } else if (roll < 0.97) {
      const by = 1 + random.int(3);
      const id = `cmd-${seed}-${commandIds++}`;
      sent.set(id, { tenant: client.tenant, stream });
      const answer = await client.wire.call('command', { id, stream, type: 'add', payload: { by } });
      // Lost with its connection: it may or may not have run; the log says which.
      if (lostWithItsConnection(answer)) return;
      if (mayWrite) {
        expect(answer.result, `seed ${seed}: ${JSON.stringify(answer)}`).toMatchObject({ stream });
        acknowledged.add(id);
        acked++;
      } else {
        expectForbidden(answer, stream, 'write');
      }
    } else {
      // Reconnect: what the old connection received is checked, the new one starts clean.
      check(client);
      client.wire.close();
      client.wire = await open(client.tenant);
      client.checked = 0;
    }
  };

  /** The connection was closed (a reconnect in the same round) before the answer came. */
  const lostWithItsConnection = (answer: HubMessage) => answer.error?.code === 0;

  const expectForbidden = (answer: HubMessage, stream: string, action: StreamAction) => {
    expect(answer.error, `seed ${seed}: ${JSON.stringify(answer)}`).toMatchObject({ code: ErrorCodes.FORBIDDEN, data: { stream, action } });
    forbidden++;
  };

  try {
    // Operations run in rounds of concurrent requests, so subscribes, commands and reconnects interleave.
    for (let done = 0; done < OPERATIONS;) {
      const round = Math.min(1 + random.int(24), OPERATIONS - done);
      await Promise.all(Array.from({ length: round }, () => operation(random.pick(clients))));
      done += round;
      for (const client of clients) check(client);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
    for (const client of clients) check(client);
    // Refused writes changed nothing: every event in a log comes from a command of a tenant allowed
    // to write that stream, and every acknowledged command is in its log exactly once.
    const logged = new Set<string>();
    for (const stream of STREAMS) {
      const events = await hub.store.read(stream, 1, Number.MAX_SAFE_INTEGER);
      let n = 0;
      for (const event of events) {
        const origin = sent.get(event.commandId!);
        expect(origin, `seed ${seed}: ${stream} v${event.version} from an unknown command`).toBeDefined();
        expect(origin!.stream).toBe(stream);
        expect(grants.write.get(origin!.tenant)!.has(stream), `seed ${seed}: ${origin!.tenant} wrote ${stream}`).toBe(true);
        expect(logged.has(event.commandId!), `seed ${seed}: ${event.commandId} applied twice`).toBe(false);
        logged.add(event.commandId!);
        n += (event.data as { by: number }).by;
      }
      expect((await hub.read(stream)).state).toEqual({ n });
    }
    for (const id of acknowledged) expect(logged.has(id), `seed ${seed}: acknowledged ${id} is not in its log`).toBe(true);
    expect(errors).toEqual([]);
  } finally {
    for (const client of clients) client.wire.close();
    await hub.close();
  }
  return { forbidden, delivered, acked };
}

function streamOf(message: HubMessage): string | undefined {
  if (message.method === 'events' || message.method === 'resync') return message.params?.stream;
  if (message.result !== undefined && typeof message.result === 'object' && message.result !== null && 'stream' in message.result) {
    // Subscribe answers carry state or events of the stream; command acks name the stream written.
    if ('snapshot' in message.result || 'events' in message.result) return message.result.stream;
  }
  return undefined;
}

describe('tenancy under random traffic', () => {
  const seed = Number(process.env.LOCKSTEP_SEED ?? 0x7e4a47);
  it(`seed ${seed}: ${OPERATIONS.toLocaleString('en')} operations by 6 tenants; no event reaches a tenant that may not read its stream`, async () => {
    const report = await run(seed);
    // The run must have exercised both sides of every rule, or it proves nothing.
    expect(report.forbidden).toBeGreaterThan(1_000);
    expect(report.acked).toBeGreaterThan(1_000);
    expect(report.delivered).toBeGreaterThan(1_000);
  });
});

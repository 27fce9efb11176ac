import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ErrorCodes, builtInDomains, fingerprint, type AnyDomain } from '@lockstep/core';
import { describePostgres } from '@lockstep/postgres/testing';
import { FileEventStore, Hub, type EventStore } from '@lockstep/server';
import { counterDomain } from '@lockstep/testkit';
import { createWebSocketServer } from '@lockstep/ws/server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RawPeer } from '../wsPeer.js';

/**
 * Stream names, ids and payloads that try path traversal against the file store and SQL injection
 * against the PostgreSQL store: over the wire, malformed names are INVALID_PARAMS before any store
 * sees them; well-formed but awkward ones (case twins, dots, device names) and hostile text in
 * payloads are stored and read back verbatim, after a restart too. Below the hub, each store keeps
 * even names the wire would refuse inside its own directory or its own rows.
 */

const DOMAINS: AnyDomain[] = [...builtInDomains, counterDomain];

/** Names the wire refuses: none of them may reach a store. */
const MALFORMED = [
  '../../etc/passwd',
  'counter/../../../etc/passwd',
  'counter/..',
  'counter/.hidden',
  'counter/a/b',
  'counter/a\\..\\..\\b',
  "counter/x'; DROP TABLE events; --",
  'counter/x";DELETE FROM heads',
  'counter/x%2F..%2F..',
  'counter/x\u0000y',
  'COUNTER/x',
  '/counter/x',
  `counter/${'a'.repeat(200)}`,
  'counter/$1',
  'counter/-rf',
];

/** Names the wire accepts that a careless store could still get wrong. */
const AWKWARD = [
  'counter/A',
  'counter/a',
  'counter/CON',
  'counter/nul',
  'counter/a..b',
  'counter/x:y@z',
  'counter/_',
  'counter/_-.',
  `counter/${'Z'.repeat(128)}`,
];

/** Text that means something to a shell, a path or SQL: data, never code. */
const HOSTILE_TEXT = ["'); DROP TABLE lockstep.events; --", '../../../../etc/shadow', '$1 $2 \\x00 %s %n', "\\'; SELECT pg_sleep(10); --", '\u0000\u202e'];

/** Names below the hub (the store API itself), including ones the wire refuses. */
const RAW_NAMES = [
  '../../../etc/lockstep-escape',
  '..',
  '.',
  '',
  'a/../../b',
  "x'); DROP TABLE events; --",
  '$1',
  '\\',
  'ünïcödé/名前',
  'CON',
  'x'.repeat(1_000),
];

async function serveOver(store: EventStore) {
  const hub = new Hub({ domains: DOMAINS, store, snapshotEvery: 1 });
  const server = createWebSocketServer(hub, { port: 0 });
  await server.ready;
  const peer = await RawPeer.connect(`ws://127.0.0.1:${server.address().port}`);
  await peer.call('hello', { protocol: 1, clientId: 'names' });
  return {
    hub,
    peer,
    close: async () => {
      peer.socket.terminate();
      await hub.close();
      await server.close();
    },
  };
}

/** Runs the wire attacks on a hub over `store`; answers what a restarted hub must find again. */
async function attackOverTheWire(store: EventStore): Promise<Map<string, unknown>> {
  const { hub, peer, close } = await serveOver(store);
  try {
    for (const stream of MALFORMED) {
      expect((await peer.call('subscribe', { stream })).error.code, stream).toBe(ErrorCodes.INVALID_PARAMS);
      expect((await peer.call('command', { id: 'bad-1', stream, type: 'add', payload: { by: 1 } })).error.code, stream).toBe(ErrorCodes.INVALID_PARAMS);
    }
    expect(await store.streams()).toEqual([]);
    for (const [i, stream] of AWKWARD.entries()) {
      expect((await peer.call('command', { id: `awkward-${i}`, stream, type: 'add', payload: { by: i + 1 } })).result, stream).toMatchObject({ version: 1 });
    }
    for (const [i, title] of HOSTILE_TEXT.entries()) {
      const answer = await peer.call('command', {
        id: `text-${i}`,
        stream: 'tasks/hostile',
        type: 'task.create',
        payload: { id: `t${i}`, title, description: title },
      });
      expect(answer.result, title).toMatchObject({ version: i + 1 });
    }
    // Ids with SQL or path characters are refused by their schemas.
    for (const id of ["x'--", '../x', 'a b']) {
      expect((await peer.call('command', { id, stream: 'counter/A', type: 'add', payload: { by: 1 } })).error.code).toBe(ErrorCodes.INVALID_PARAMS);
    }
    const expected = new Map<string, unknown>();
    for (const stream of [...AWKWARD, 'tasks/hostile']) expected.set(stream, await hub.read(stream));
    // Case twins are two streams, never one file.
    expect(expected.get('counter/A')).toEqual({ state: { n: 1 }, version: 1 });
    expect(expected.get('counter/a')).toEqual({ state: { n: 2 }, version: 1 });
    const tasks = (expected.get('tasks/hostile') as { state: { tasks: Record<string, { title: string }> } }).state.tasks;
    expect(HOSTILE_TEXT.map((_, i) => tasks[`t${i}`]!.title)).toEqual(HOSTILE_TEXT);
    expect((await store.streams()).sort()).toEqual([...AWKWARD, 'tasks/hostile'].sort());
    return expected;
  } finally {
    await close();
  }
}

/** Appends one event and a snapshot to each raw name through the store API. */
async function writeRawNames(store: EventStore): Promise<void> {
  for (const [i, stream] of RAW_NAMES.entries()) {
    const events = [{ version: 1, type: 'added', data: { by: i, text: HOSTILE_TEXT[i % HOSTILE_TEXT.length] }, time: 1 }];
    await store.append(stream, 0, [{ commandId: `raw-${i}`, fingerprint: fingerprint([stream]), events }]);
    await store.saveSnapshot({ stream, version: 1, state: { name: stream } });
  }
}

/** Each raw name reads back exactly what was written to it, and only that. */
async function verifyRawNames(store: EventStore): Promise<void> {
  for (const [i, stream] of RAW_NAMES.entries()) {
    expect(await store.read(stream, 1, 10), JSON.stringify(stream)).toEqual([
      expect.objectContaining({ version: 1, data: { by: i, text: HOSTILE_TEXT[i % HOSTILE_TEXT.length] } }),
    ]);
    expect(await store.loadSnapshot(stream)).toEqual({ stream, version: 1, state: { name: stream } });
    expect((await store.info(stream)).head).toBe(1);
  }
  expect(await store.streams()).toEqual(expect.arrayContaining(RAW_NAMES));
}

/** Every path under `root`. */
function walk(root: string, into: string[] = []): string[] {
  for (const entry of readdirSync(root)) {
    const path = join(root, entry);
    into.push(path);
    if (statSync(path).isDirectory()) walk(path, into);
  }
  return into;
}

describe('hostile names against the file store', () => {
  function sandbox() {
    // The store's directory sits alone inside a sandbox: anything written outside it shows up here.
    const sandboxDir = mkdtempSync(join(tmpdir(), 'lockstep-names-'));
    const directory = join(sandboxDir, 'inner', 'data');
    onTestFinished(() => rmSync(sandboxDir, { recursive: true, force: true }));
    const outside = () => walk(sandboxDir).filter((path) => !path.startsWith(directory) && path !== join(sandboxDir, 'inner'));
    return { directory, outside };
  }

  it('over the wire: malformed names refused, awkward names and hostile payloads stored verbatim, found again after a restart', async () => {
    const { directory, outside } = sandbox();
    let store = await FileEventStore.open(directory);
    const expected = await attackOverTheWire(store);
    await store.close();
    store = await FileEventStore.open(directory);
    onTestFinished(() => store.close());
    const hub = new Hub({ domains: DOMAINS, store });
    for (const [stream, read] of expected) expect(await hub.read(stream), stream).toEqual(read);
    await hub.close();
    expect(outside()).toEqual([]);
    // Snapshot files are named by the store, never by the stream name as given.
    for (const path of walk(directory)) expect(relative(directory, path)).not.toMatch(/\.\.|[A-Z]{3}$|'|"/);
  });

  it('through the store API, names the wire would refuse stay inside the store directory and read back verbatim', async () => {
    const { directory, outside } = sandbox();
    let store = await FileEventStore.open(directory);
    await writeRawNames(store);
    await verifyRawNames(store);
    await store.close();
    store = await FileEventStore.open(directory);
    onTestFinished(() => store.close());
    await verifyRawNames(store);
    expect(outside()).toEqual([]);
  });
});

describePostgres('hostile names against the PostgreSQL store', (db) => {
  it('over the wire: malformed names refused, awkward names and hostile payloads stored verbatim, found again by a new hub', async () => {
    const schema = db.schema();
    const store = await db.open({ schema });
    const expected = await attackOverTheWire(store);
    const reopened = await db.open({ schema });
    const hub = new Hub({ domains: DOMAINS, store: reopened });
    for (const [stream, read] of expected) expect(await hub.read(stream), stream).toEqual(read);
    await hub.close();
    const tables = await db.sql<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name', [
      schema,
    ]);
    expect(tables.length).toBeGreaterThanOrEqual(4);
    const [{ count }] = (await db.sql<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".events`)) as [{ count: string }];
    expect(Number(count)).toBe(AWKWARD.length + HOSTILE_TEXT.length);
  });

  it('through the store API, names with quotes, semicolons and placeholders are values, never SQL', async () => {
    const schema = db.schema();
    const store = await db.open({ schema });
    await writeRawNames(store);
    await verifyRawNames(store);
    await verifyRawNames(await db.open({ schema }));
    const tables = await db.sql<{ table_name: string }>('SELECT table_name FROM information_schema.tables WHERE table_schema = $1', [schema]);
    expect(tables.map((row) => row.table_name)).toEqual(expect.arrayContaining(['events', 'heads', 'commands', 'snapshots']));
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    for (const schema of ['lockstep; DROP SCHEMA public', 'a"b', '../x', 'Lockstep']) {
      await expect(db.open({ schema })).rejects.toThrow(RangeError);
    }
  });
});

import { StoreConflictError, type Commit, type StoredEvent } from '@lockstep/server';
import { describeEventStoreConformance } from '@lockstep/testkit';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { PostgresEventStore } from './postgresEventStore.js';
import { SCHEMA_VERSION } from './schema.js';
import { describePostgres } from './testing.js';

const T0 = Date.UTC(2026, 0, 1);

function events(commandId: string, from: number, count: number, data: (version: number) => unknown = (v) => ({ n: v })): StoredEvent[] {
  return Array.from({ length: count }, (_, i) => ({ version: from + i, type: 'counter.added', data: data(from + i), time: T0 + from + i, commandId }));
}

function commit(commandId: string, list: StoredEvent[], fingerprint = `fp:${commandId}`): Commit {
  return { commandId, fingerprint, events: list };
}

/** Resolves with the first value `poll` answers that `done` accepts (polling, no timing assertion). */
async function eventually<T>(poll: () => Promise<T> | T, done: (value: T) => boolean, what: string): Promise<T> {
  for (let i = 0; i < 1_000; i++) {
    const value = await poll();
    if (done(value)) return value;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`gave up waiting for ${what}`);
}

describePostgres('postgres event store', (db) => {
  describeEventStoreConformance('conformance', () => PostgresEventStore.open({ connectionString: db.url, schema: db.schema(), onError: () => {} }), {
    reopen: async (store) => {
      const { schema } = store as PostgresEventStore;
      await store.close();
      return PostgresEventStore.open({ connectionString: db.url, schema, onError: () => {} });
    },
    presence: true,
  });

  describe('schema and migration', () => {
    it('migrates once when several hubs open the same new schema at the same moment', async () => {
      const schema = db.schema();
      const stores = await Promise.all(Array.from({ length: 6 }, () => db.open({ schema })));
      expect(new Set(stores.map((store) => store.epoch)).size).toBe(1);
      const rows = await db.sql<{ version: number }>(`SELECT version FROM ${schema}.migrations ORDER BY version`);
      expect(rows.map((row) => row.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
      const reopened = await db.open({ schema });
      expect(reopened.epoch).toBe(stores[0]!.epoch);
    });

    it('refuses a schema written by a newer release, and bad schema or channel names', async () => {
      const schema = db.schema();
      await db.open({ schema });
      await db.sql(`INSERT INTO ${schema}.migrations (version) VALUES ($1)`, [SCHEMA_VERSION + 1]);
      await expect(PostgresEventStore.open({ connectionString: db.url, schema })).rejects.toThrow(/newer @lockstep\/postgres/);
      await expect(PostgresEventStore.open({ connectionString: db.url, schema: 'x"; DROP SCHEMA public; --' })).rejects.toThrow(RangeError);
      await expect(PostgresEventStore.open({ connectionString: db.url, notifyChannel: 'a b' })).rejects.toThrow(RangeError);
      await expect(PostgresEventStore.open({ schema: 'lockstep' })).rejects.toThrow(TypeError);
    });

    it('works on a pool you own, and leaves it open when closed', async () => {
      const pool = new pg.Pool({ connectionString: db.url, max: 3 });
      try {
        const store = await PostgresEventStore.open({ pool, schema: db.schema() });
        const seen: number[] = [];
        store.watch((_, head) => seen.push(head));
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 2))]);
        await eventually(
          () => seen,
          (list) => list.includes(2),
          'the notification',
        );
        await store.close();
        expect((await pool.query<{ one: number }>('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      } finally {
        await pool.end();
      }
    });

    it('assigns versions from the head row: the schema has no sequence', async () => {
      const store = await db.open();
      await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 3))]);
      const sequences = await db.sql(`SELECT sequence_name FROM information_schema.sequences WHERE sequence_schema = $1`, [store.schema]);
      expect(sequences).toEqual([]);
    });
  });

  describe('untrusted text is only ever a parameter', () => {
    // Ids, names and types: what the hub lets through is far narrower (core's patterns), but the
    // store must not depend on it.
    const hostile = [`x'); DROP TABLE events; --`, `"; DROP SCHEMA lockstep CASCADE; --`, `$1 $2 \\ '' "" ;`, `ünïcødé 🚀 %s %n`];
    // Payloads are JSON: anything a client can encode, NUL characters and lone surrogates included.
    const payload = { nul: '\u0000', lone: '\ud800', quote: `'); DROP TABLE events; --`, deep: [[[{ $1: null }]]], big: 1.5e300, negative: -0.5 };

    it('round-trips hostile command ids, fingerprints, stream names, types and payloads', async () => {
      const store = await db.open();
      const stream = `tasks/a'b";--`;
      const commits = hostile.map((text, i) =>
        commit(text, [{ version: i + 1, type: text, data: { text, payload, [text]: [text] }, time: T0, commandId: text }], `fp ${text}`),
      );
      await store.append(stream, 0, commits);
      const read = await store.read(stream, 1, 100);
      expect(read).toEqual(commits.flatMap((c) => c.events));
      const found = await store.findCommands(hostile);
      expect([...found.keys()].sort()).toEqual([...hostile].sort());
      for (const [i, text] of hostile.entries()) expect(found.get(text)).toEqual({ commandId: text, stream, fingerprint: `fp ${text}`, version: i + 1 });
      await store.saveSnapshot({ stream, version: 4, state: { hostile, payload } });
      expect(await store.loadSnapshot(stream)).toEqual({ stream, version: 4, state: { hostile, payload } });
      expect(await store.streams()).toEqual([stream]);
      const tables = await db.sql<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [
        store.schema,
      ]);
      expect(tables.map((row) => row.table_name)).toEqual(['commands', 'events', 'heads', 'holders', 'hubs', 'meta', 'migrations', 'presence', 'snapshots']);
    });

    it('refuses a NUL character in a text field (PostgreSQL text cannot hold one) and appends nothing', async () => {
      const store = await db.open();
      await expect(store.append('tasks/a', 0, [commit('nul\u0000id', events('x', 1, 1))])).rejects.toThrow();
      expect(await store.info('tasks/a')).toEqual({ head: 0, oldestRetained: 1 });
      await store.append('tasks/a', 0, [commit('after', events('after', 1, 1))]);
      expect(await store.info('tasks/a')).toEqual({ head: 1, oldestRetained: 1 });
    });
  });

  describe('several stores (hubs) on one schema', () => {
    it('lets exactly one of 50 concurrent appends at the same head win, across two stores', async () => {
      const schema = db.schema();
      const [a, b] = [await db.open({ schema }), await db.open({ schema })];
      await a.append('tasks/a', 0, [commit('c0', events('c0', 1, 1))]);
      for (let round = 0; round < 5; round++) {
        const head = 1 + round;
        const ids = Array.from({ length: 50 }, (_, i) => `w${round}-${i}`);
        const outcomes = await Promise.allSettled(ids.map((id, i) => (i % 2 ? a : b).append('tasks/a', head, [commit(id, events(id, head + 1, 1))])));
        const winners = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        expect(winners).toHaveLength(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') {
            expect(outcome.reason).toBeInstanceOf(StoreConflictError);
            expect(outcome.reason).toMatchObject({ expected: head, actual: head + 1 });
          }
        }
        expect([...(await b.findCommands(ids)).keys()]).toHaveLength(1);
      }
      expect((await a.read('tasks/a', 1, 100)).map((event) => event.version)).toEqual([1, 2, 3, 4, 5, 6]);
    });

    it('creates a new stream once when two stores race to append its first events', async () => {
      const schema = db.schema();
      const [a, b] = [await db.open({ schema }), await db.open({ schema })];
      for (let i = 0; i < 20; i++) {
        const stream = `tasks/new${i}`;
        const outcomes = await Promise.allSettled([
          a.append(stream, 0, [commit(`a${i}`, events(`a${i}`, 1, 2))]),
          b.append(stream, 0, [commit(`b${i}`, events(`b${i}`, 1, 3))]),
        ]);
        const won = outcomes.map((outcome) => outcome.status === 'fulfilled');
        expect(won.filter(Boolean)).toHaveLength(1);
        const lost = outcomes.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
        expect(lost.reason).toBeInstanceOf(StoreConflictError);
        expect((await a.info(stream)).head).toBe(won[0] ? 2 : 3);
      }
    });

    it('answers a command id another store appended meanwhile with StoreConflictError, so the hub catches up', async () => {
      const schema = db.schema();
      const [a, b] = [await db.open({ schema }), await db.open({ schema })];
      await a.append('tasks/a', 0, [commit('shared', events('shared', 1, 1))]);
      const attempt = b.append('tasks/b', 0, [commit('shared', events('shared', 1, 1))]);
      await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
      await expect(attempt).rejects.toMatchObject({ stream: 'tasks/b', expected: 0, actual: 0 });
      expect(await b.info('tasks/b')).toEqual({ head: 0, oldestRetained: 1 });
    });

    it('tells every watcher of every store about each append, once the head moved', async () => {
      const schema = db.schema();
      const [a, b] = [await db.open({ schema }), await db.open({ schema })];
      const seen: Array<[string, number]> = [];
      const unwatch = a.watch((stream, head) => seen.push([stream, head]));
      expect(await a.listening()).toBe(true);
      await b.append('tasks/a', 0, [commit('c1', events('c1', 1, 2))]);
      await b.append('tasks/a', 2, [commit('empty', [])]);
      await b.append('focus/x', 0, [commit('f1', events('f1', 1, 1))]);
      await a.append('tasks/a', 2, [commit('c2', events('c2', 3, 1))]);
      await eventually(
        () => seen.length,
        (n) => n >= 3,
        'three notifications',
      );
      expect(seen).toEqual([
        ['tasks/a', 2],
        ['focus/x', 1],
        ['tasks/a', 3],
      ]);
      unwatch();
      expect(await a.listening()).toBe(false);
      await b.append('tasks/a', 3, [commit('c3', events('c3', 4, 1))]);
      await b.info('tasks/a');
      expect(seen).toHaveLength(3);
    });

    it('can LISTEN through a connection string of its own (when queries go through a transaction pooler)', async () => {
      const schema = db.schema();
      const a = await db.open({ schema, listenConnectionString: db.url, poolSize: 1 });
      const b = await db.open({ schema });
      const seen: number[] = [];
      a.watch((_, head) => seen.push(head));
      expect(await a.listening()).toBe(true);
      await b.append('tasks/a', 0, [commit('c1', events('c1', 1, 1))]);
      await eventually(
        () => seen,
        (list) => list.includes(1),
        'the notification',
      );
      const rows = await db.sql(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1`, [`lockstep:${schema}:listen`]);
      expect(rows).toHaveLength(1);
    });

    it('reconnects a terminated LISTEN connection and reports the heads it missed meanwhile', async () => {
      const schema = db.schema();
      const errors: string[] = [];
      const a = await db.open({ schema, listenBackoff: { initialMs: 20, maxMs: 200 }, onError: (_, context) => errors.push(context) });
      const b = await db.open({ schema });
      await b.append('tasks/early', 0, [commit('e1', events('e1', 1, 1))]);
      const heads = new Map<string, number>();
      a.watch((stream, head) => heads.set(stream, Math.max(head, heads.get(stream) ?? 0)));
      await a.listening();
      // Reported on connect too: a hub that loaded a stream before LISTEN was up misses nothing.
      await eventually(
        () => heads.get('tasks/early'),
        (head) => head === 1,
        'the head reported on connect',
      );

      for (let round = 1; round <= 3; round++) {
        const terminated = await db.sql<{ ok: boolean }>(`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = $1`, [
          `lockstep:${schema}:listen`,
        ]);
        expect(terminated).toEqual([{ ok: true }]);
        // Appended while nobody listens (or not yet again): only the report after reconnecting has it.
        await b.append('tasks/a', round - 1, [commit(`c${round}`, events(`c${round}`, round, 1))]);
        await eventually(
          () => heads.get('tasks/a'),
          (head) => head === round,
          `tasks/a at ${round} after reconnect ${round}`,
        );
        await eventually(() => a.listening(), Boolean, 'listening again');
      }
      expect(errors.some((context) => context.startsWith('LISTEN connection lost'))).toBe(true);
    });
    it('recovers when the server closes every connection of the store (a restart, a failover)', async () => {
      const schema = db.schema();
      const errors: string[] = [];
      const a = await db.open({ schema, listenBackoff: { initialMs: 20, maxMs: 200 }, onError: (_, context) => errors.push(context) });
      const b = await db.open({ schema });
      const heads: Array<[string, number]> = [];
      a.watch((stream, head) => heads.push([stream, head]));
      await a.listening();
      await a.append('tasks/a', 0, [commit('c1', events('c1', 1, 1))]);
      const closed = await db.sql(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1`, [`lockstep:${schema}%`]);
      expect(closed.length).toBeGreaterThanOrEqual(2);
      // A query may meet a connection whose end the pool has not noticed yet, and fail: the hub
      // answers UNAVAILABLE and the client retries. Soon the pool has fresh connections.
      await eventually(
        () =>
          a.info('tasks/a').then(
            () => true,
            () => false,
          ),
        Boolean,
        'a query answered on a fresh connection',
      );
      await a.append('tasks/a', 1, [commit('c2', events('c2', 2, 1))]);
      await eventually(() => a.listening(), Boolean, 'listening again');
      await b.append('tasks/a', 2, [commit('c3', events('c3', 3, 1))]);
      await eventually(() => heads.some(([stream, head]) => stream === 'tasks/a' && head === 3), Boolean, 'the append of the other store reported');
      // The LISTEN connection's loss is always reported. An idle pooled connection's end is reported
      // too when the pool notices it before a query picks that connection up (then the query fails
      // instead, as above): which of the two comes first is up to the scheduler, so it is not asserted.
      expect(errors.some((context) => context.startsWith('LISTEN connection lost'))).toBe(true);
      expect((await a.read('tasks/a', 1, 10)).map((event) => event.commandId)).toEqual(['c1', 'c2', 'c3']);
    });
  });

  describe('compaction, snapshots and command records', () => {
    it('keeps command records of compacted events, so deduplication survives compaction', async () => {
      const store = await db.open();
      await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 5)), commit('c2', events('c2', 6, 5))]);
      await store.saveSnapshot({ stream: 'tasks/a', version: 10, state: { n: 10 } });
      await store.compact('tasks/a', 11);
      expect(await store.info('tasks/a')).toEqual({ head: 10, oldestRetained: 11 });
      expect((await store.findCommands(['c1', 'c2'])).size).toBe(2);
      await expect(store.append('tasks/a', 10, [commit('c1', events('c1', 11, 1))])).rejects.toBeInstanceOf(StoreConflictError);
    });

    it('keeps the newest snapshot when an older one is saved later (a slower hub)', async () => {
      const store = await db.open();
      await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 10))]);
      await store.saveSnapshot({ stream: 'tasks/a', version: 8, state: { n: 8 } });
      await store.saveSnapshot({ stream: 'tasks/a', version: 3, state: { n: 3 } });
      expect(await store.loadSnapshot('tasks/a')).toEqual({ stream: 'tasks/a', version: 8, state: { n: 8 } });
    });

    it('prunes command records older than a date, which sets the deduplication horizon', async () => {
      const store = await db.open();
      await store.append('tasks/a', 0, [commit('old', events('old', 1, 1))]);
      await db.sql(`UPDATE ${store.schema}.commands SET recorded_at = now() - interval '40 days' WHERE command_id = 'old'`);
      await store.append('tasks/a', 1, [commit('new', events('new', 2, 1))]);
      expect(await store.pruneCommandRecords(new Date(Date.now() - 30 * 86_400_000))).toBe(1);
      expect([...(await store.findCommands(['old', 'new'])).keys()]).toEqual(['new']);
    });
  });
});

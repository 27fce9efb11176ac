/**
 * Event store appends per second: PostgreSQL against the memory store, in the same run (issue 5).
 * One commit of one event per append, as a hub appends a batch of one command:
 * - sequential: one appender, each append awaited before the next (the latency-bound case);
 * - concurrent: 64 appenders at once, each on its own stream (the throughput a hub serving many
 *   streams can get; appends to one stream are serialized by the hub anyway).
 * Runs alternate between the stores; figures are medians over runs. Needs LOCKSTEP_PG_URL (start a
 * throwaway cluster with `bash scripts/postgres.sh run pnpm bench -- postgres`); without it only
 * the memory baseline is measured, with a note. The PostgreSQL server runs outside the pinned core.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresEventStore } from '@lockstep/postgres';
import { MemoryEventStore, type EventStore } from '@lockstep/server';
import { APPENDERS, PER_APPENDER, SEQUENTIAL, commit, concurrent, sequential } from './appendRates.js';
import { median, report, smoke } from './stats.js';

const RUNS = smoke ? 1 : 5;
const url = process.env.LOCKSTEP_PG_URL;

interface Subject {
  name: string;
  open(): Promise<EventStore>;
  cleanup(): Promise<void>;
}

const schema = `lockstep_bench_${randomBytes(4).toString('hex')}`;
const subjects: Subject[] = [{ name: 'memory store', open: async () => new MemoryEventStore(), cleanup: async () => {} }];
const notes: string[] = [];
if (url) {
  subjects.push({
    name: 'postgres store',
    // Pool of 64 + LISTEN, so every concurrent appender has a connection.
    open: () => PostgresEventStore.open({ connectionString: url, schema, poolSize: APPENDERS }),
    async cleanup() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  });
  notes.push('PostgreSQL: a local throwaway cluster (scripts/postgres.sh: fsync off, synchronous_commit off), over loopback TCP; its server processes are not pinned.');
} else {
  notes.push('PostgreSQL not measured: LOCKSTEP_PG_URL is not set (run under `bash scripts/postgres.sh run …`).');
  console.error('postgres.bench: LOCKSTEP_PG_URL is not set; measuring the memory baseline only');
}

const results = new Map(subjects.map((subject) => [subject.name, { sequential: [] as number[], concurrent: [] as number[] }]));
try {
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < subjects.length; k++) {
      const subject = subjects[(run + k) % subjects.length]!;
      const store = await subject.open();
      try {
        // Warm-up: every pooled connection opened and its statements prepared before timing.
        await Promise.all(Array.from({ length: APPENDERS }, (_, a) => store.append(`tasks/warm-r${run}-${a}`, 0, [commit(`r${run}.w${a}`, 1)])));
        results.get(subject.name)!.sequential.push(await sequential(store, `r${run}`));
        results.get(subject.name)!.concurrent.push(await concurrent(store, `r${run}`));
      } finally {
        await store.close();
      }
    }
  }
} finally {
  for (const subject of subjects) await subject.cleanup();
}

const rows = subjects.map(({ name }) => ({
  subject: name,
  metrics: { sequential: median(results.get(name)!.sequential), concurrent: median(results.get(name)!.concurrent) },
}));
const pgRow = rows.find((row) => row.subject === 'postgres store');
console.log(`event store appends/s, ${RUNS} runs, medians${smoke ? ' — SMOKE SIZES' : ''}`);
for (const { subject, metrics } of rows) console.log(`${subject}: sequential ${metrics.sequential.toFixed(0)}/s, 64 concurrent ${metrics.concurrent.toFixed(0)}/s`);
report({
  scenario: 'event store appends',
  description: `Appends of one commit with one event: one at a time (${SEQUENTIAL}), and ${APPENDERS} appenders on ${APPENDERS} streams at once (${APPENDERS} × ${PER_APPENDER}); ${RUNS} alternating runs, medians.`,
  units: { sequential: 'appends/s', concurrent: 'appends/s' },
  rows,
  ...(pgRow ? { ratios: { 'postgres concurrent / sequential': pgRow.metrics.concurrent / pgRow.metrics.sequential } } : {}),
  notes,
});

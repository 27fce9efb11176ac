/**
 * Event store appends per second (issues 5 and 8), every store in the same run: memory, file with
 * durability `fsync` and `os`, PostgreSQL, and the baseline of `fs.appendFile` + `fdatasync` of the
 * same bytes per append. One commit of one event per append, as a hub appends a batch of one command:
 * - sequential: one writer, each append awaited before the next (one write and, where durable, one
 *   flush per append: the latency-bound case);
 * - concurrent: 20 writers at once, each on its own stream (the file store's group commit: appends
 *   arriving while a write is in flight share the next write and fsync; PostgreSQL: a pool of 20).
 * Runs alternate between the stores; figures are medians over runs.
 *
 * File data goes to the OS temp directory (LOCKSTEP_BENCH_DIR to put it on the disk you deploy on).
 * PostgreSQL needs LOCKSTEP_PG_URL — `bash scripts/postgres.sh run pnpm bench -- stores` starts a
 * throwaway cluster (fsync off: an upper bound for the database side); without it the row is left out,
 * with a note. The PostgreSQL server is not pinned to the benchmark's core.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { PostgresEventStore } from '@lockstep/postgres';
import { FileEventStore, MemoryEventStore, type Commit } from '@lockstep/server';
import { APPENDERS, PER_APPENDER, SEQUENTIAL, commit, concurrent, sequential, type Appender } from './appendRates.js';
import { pairedRatio, round } from './harness.js';
import { median, report, smoke } from './stats.js';

const RUNS = smoke ? 1 : 5;
const root = mkdtempSync(join(process.env['LOCKSTEP_BENCH_DIR'] ?? tmpdir(), 'lockstep-bench-stores-'));
const url = process.env['LOCKSTEP_PG_URL'];
const schema = `lockstep_bench_${randomBytes(4).toString('hex')}`;

interface Opened {
  store: Appender;
  close(): Promise<void>;
  /** Records per write, for stores that batch writes. */
  perWrite?: () => { records: number; writes: number };
}

interface Subject {
  name: string;
  open(): Promise<Opened>;
}

/**
 * The naive durable log: each append writes its commit as one JSON line with `fs.appendFile` and
 * waits for `fdatasync`, with no batching — what "one fsync per command" costs on this disk.
 */
async function appendFileBaseline(path: string): Promise<Opened> {
  const handle: FileHandle = await open(path, 'a');
  const append = async (_stream: string, _head: number, commits: readonly Commit[]) => {
    await handle.appendFile(`${commits.map((c) => JSON.stringify(c)).join('\n')}\n`);
    await handle.datasync();
  };
  return { store: { append }, close: () => handle.close() };
}

let directories = 0;
const subjects: Subject[] = [
  { name: 'memory store', open: async () => ({ store: new MemoryEventStore(), close: async () => {} }) },
  {
    name: 'file store (fsync)',
    async open() {
      const store = await FileEventStore.open(join(root, `d${directories++}`), { durability: 'fsync' });
      return { store, close: () => store.close(), perWrite: () => store.writeStats };
    },
  },
  {
    name: 'file store (os)',
    async open() {
      const store = await FileEventStore.open(join(root, `d${directories++}`), { durability: 'os' });
      return { store, close: () => store.close() };
    },
  },
  { name: 'fs.appendFile + fdatasync per append (baseline)', open: () => appendFileBaseline(join(root, `log${directories++}.jsonl`)) },
];
const notes: string[] = [];
if (url) {
  subjects.push({
    name: 'postgres store',
    async open() {
      // A pool as large as the number of writers, plus the LISTEN connection.
      const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: APPENDERS });
      // Warm-up: every pooled connection opened and its statements prepared before timing.
      const warm = randomBytes(3).toString('hex');
      await Promise.all(Array.from({ length: APPENDERS }, (_, a) => store.append(`tasks/warm-${warm}-${a}`, 0, [commit(`w${warm}.${a}`, 1)])));
      return { store, close: () => store.close() };
    },
  });
  notes.push(
    'PostgreSQL: a local throwaway cluster (scripts/postgres.sh: fsync off, synchronous_commit off) over loopback TCP, its server processes not pinned: an upper bound for the database side.',
  );
} else {
  notes.push('PostgreSQL not measured: LOCKSTEP_PG_URL is not set (run under `bash scripts/postgres.sh run …`).');
  console.error('stores: LOCKSTEP_PG_URL is not set; PostgreSQL is left out');
}

interface Metrics {
  [metric: string]: number;
  sequential: number;
  concurrent: number;
}

const perWrite: number[] = [];
const results = new Map<Subject, { samples: Metrics[] }>(subjects.map((subject) => [subject, { samples: [] }]));
try {
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < subjects.length; k++) {
      const subject = subjects[(run + k) % subjects.length]!;
      const opened = await subject.open();
      try {
        const tag = `r${run}${randomBytes(2).toString('hex')}`;
        const seq = await sequential(opened.store, tag);
        const before = opened.perWrite?.();
        const con = await concurrent(opened.store, tag);
        const after = opened.perWrite?.();
        if (before && after) perWrite.push((after.records - before.records) / (after.writes - before.writes));
        results.get(subject)!.samples.push({ sequential: seq, concurrent: con });
        console.error(`  run ${run + 1}/${RUNS} ${subject.name}: sequential ${round(seq)}/s, ${APPENDERS} concurrent ${round(con)}/s`);
      } finally {
        await opened.close();
      }
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
  if (url) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
}

const rows = subjects.map((subject) => {
  const samples = results.get(subject)!.samples;
  return { subject: subject.name, metrics: { sequential: median(samples.map((s) => s.sequential)), concurrent: median(samples.map((s) => s.concurrent)) } };
});
const [memory, fileFsync, fileOs, baseline, postgres] = subjects as [Subject, Subject, Subject, Subject, Subject | undefined];
const ratio = (a: Subject, b: Subject, metric: keyof Metrics) => pairedRatio(results, a, b, metric);
const ratios: Record<string, number> = {
  'file fsync, 20 concurrent / baseline, one appender (target ≥ 10)': pairedCross(fileFsync, 'concurrent', baseline, 'sequential'),
  'file fsync / baseline, 20 concurrent': ratio(fileFsync, baseline, 'concurrent'),
  'file fsync / baseline, one appender': ratio(fileFsync, baseline, 'sequential'),
  'file os / file fsync, one appender': ratio(fileOs, fileFsync, 'sequential'),
  'file fsync / memory, 20 concurrent': ratio(fileFsync, memory, 'concurrent'),
};
if (postgres) {
  ratios['postgres, 20 concurrent / one appender'] = pairedCross(postgres, 'concurrent', postgres, 'sequential');
}
notes.unshift(
  `Group commit: with ${APPENDERS} concurrent appenders the fsync file store wrote ${median(perWrite).toFixed(1)} appends per write + fdatasync (median).`,
  `Data directories under ${process.env['LOCKSTEP_BENCH_DIR'] ?? 'the OS temp directory'}: an fsync costs what that disk makes it cost.`,
);

/** Median over runs of one subject's metric over another's (or the same subject's other metric). */
function pairedCross(a: Subject, am: keyof Metrics, b: Subject, bm: keyof Metrics): number {
  const x = results.get(a)!.samples;
  const y = results.get(b)!.samples;
  return median(x.map((sample, run) => (sample[am] as number) / (y[run]![bm] as number)));
}

for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
report({
  scenario: 'stores',
  description: `Appends of one commit with one event: one appender (${SEQUENTIAL} appends), and ${APPENDERS} appenders on ${APPENDERS} streams at once (${APPENDERS} × ${PER_APPENDER}); ${RUNS} alternating runs, medians.`,
  units: { sequential: 'appends/s', concurrent: 'appends/s' },
  rows,
  ratios,
  notes,
});

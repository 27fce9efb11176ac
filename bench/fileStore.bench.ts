/**
 * Event store appends per second: the file store (durability fsync and os) against the memory store,
 * in the same run (issue 5). One commit of one event per append, as a hub appends a batch of one
 * command:
 * - sequential: one appender, each append awaited before the next (one write and, with fsync, one
 *   fdatasync per append: the latency-bound case);
 * - concurrent: 64 appenders at once, each on its own stream (group commit: appends arriving while
 *   a write is in flight share the next write and fsync).
 * Runs alternate between the stores; figures are medians over runs. The data directories are in
 * the OS temp directory (LOCKSTEP_BENCH_DIR to put them elsewhere, e.g. on the disk you deploy on).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileEventStore, MemoryEventStore, type EventStore } from '@lockstep/server';
import { APPENDERS, PER_APPENDER, SEQUENTIAL, concurrent, sequential } from './appendRates.js';
import { median, report, smoke } from './stats.js';

const RUNS = smoke ? 1 : 5;
const root = mkdtempSync(join(process.env.LOCKSTEP_BENCH_DIR ?? tmpdir(), 'lockstep-bench-file-'));

interface Subject {
  name: string;
  open(run: number): Promise<EventStore>;
}

let directories = 0;
const subjects: Subject[] = [
  { name: 'memory store', open: async () => new MemoryEventStore() },
  { name: 'file store (fsync)', open: () => FileEventStore.open(join(root, `d${directories++}`), { durability: 'fsync' }) },
  { name: 'file store (os)', open: () => FileEventStore.open(join(root, `d${directories++}`), { durability: 'os' }) },
];

const results = new Map(subjects.map((subject) => [subject.name, { sequential: [] as number[], concurrent: [] as number[], perWrite: [] as number[] }]));
try {
  for (let run = 0; run < RUNS; run++) {
    for (let k = 0; k < subjects.length; k++) {
      const subject = subjects[(run + k) % subjects.length]!;
      const store = await subject.open(run);
      try {
        const result = results.get(subject.name)!;
        result.sequential.push(await sequential(store, `r${run}`));
        const before = store instanceof FileEventStore ? store.writeStats : undefined;
        result.concurrent.push(await concurrent(store, `r${run}`));
        if (before && store instanceof FileEventStore) {
          const after = store.writeStats;
          result.perWrite.push((after.records - before.records) / (after.writes - before.writes));
        }
      } finally {
        await store.close();
      }
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}

const rows = subjects.map(({ name }) => ({
  subject: name,
  metrics: { sequential: median(results.get(name)!.sequential), concurrent: median(results.get(name)!.concurrent) },
}));
const metric = (name: string, key: 'sequential' | 'concurrent') => rows.find((row) => row.subject === name)!.metrics[key];
const perWrite = median(results.get('file store (fsync)')!.perWrite);
console.log(`event store appends/s, ${RUNS} runs, medians${smoke ? ' — SMOKE SIZES' : ''}`);
for (const { subject, metrics } of rows) console.log(`${subject}: sequential ${metrics.sequential.toFixed(0)}/s, 64 concurrent ${metrics.concurrent.toFixed(0)}/s`);
report({
  scenario: 'file event store appends',
  description: `Appends of one commit with one event: one at a time (${SEQUENTIAL}), and ${APPENDERS} appenders on ${APPENDERS} streams at once (${APPENDERS} × ${PER_APPENDER}); file store with durability fsync and os, memory store as the baseline; ${RUNS} alternating runs, medians.`,
  units: { sequential: 'appends/s', concurrent: 'appends/s' },
  rows,
  ratios: {
    'file fsync: concurrent / sequential (group commit)': metric('file store (fsync)', 'concurrent') / metric('file store (fsync)', 'sequential'),
    'file os / file fsync, sequential': metric('file store (os)', 'sequential') / metric('file store (fsync)', 'sequential'),
    'file fsync / memory, concurrent': metric('file store (fsync)', 'concurrent') / metric('memory store', 'concurrent'),
  },
  notes: [
    `Group commit: with 64 concurrent appenders the fsync store wrote ${perWrite.toFixed(1)} appends per write + fdatasync (median).`,
    `Data directories under ${process.env.LOCKSTEP_BENCH_DIR ?? 'the OS temp directory'}; an fsync costs what that disk makes it cost.`,
  ],
});

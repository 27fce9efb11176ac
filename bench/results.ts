/**
 * bench/results/latest.json and latest.md: what `pnpm bench` writes, and how a run that measured
 * only some scenarios (`pnpm bench -- throughput`) keeps the figures of the others.
 */
import * as z from 'zod';

const metricsSchema = z.record(z.string(), z.number().nullable());

/** What one benchmark module prints after `BENCH_RESULT ` (NaN travels as null through JSON). */
export const benchResultSchema = z.object({
  scenario: z.string().min(1),
  description: z.string(),
  /** Units of each metric, e.g. { p50: 'µs' }. */
  units: z.record(z.string(), z.string()),
  /** One row per subject ("lockstep (json)", "raw ws echo"): metric name → median value. */
  rows: z.array(z.object({ subject: z.string(), metrics: metricsSchema })),
  /** Ratios the scenario cares about, e.g. { 'p99 lockstep / raw': 1.8 }. */
  ratios: metricsSchema.optional(),
  notes: z.array(z.string()).optional(),
});
export type BenchResult = z.infer<typeof benchResultSchema>;

export const machineSchema = z.object({
  cores: z.number().int().positive(),
  cpu: z.string(),
  node: z.string(),
  pinned: z.boolean(),
  smoke: z.boolean(),
  date: z.string(),
});
export type Machine = z.infer<typeof machineSchema>;

/** A scenario's result as kept in latest.json: from which file, and when it was measured. */
export const recordedResultSchema = benchResultSchema.extend({ file: z.string().min(1), measuredAt: z.string() });
export type RecordedResult = z.infer<typeof recordedResultSchema>;

export const resultsFileSchema = z.object({ machine: machineSchema, results: z.array(recordedResultSchema) });
export type ResultsFile = z.infer<typeof resultsFileSchema>;

/** The same machine and mode, as far as the figures are concerned (the date aside). */
function sameSetup(a: Machine, b: Machine): boolean {
  return a.cores === b.cores && a.cpu === b.cpu && a.node === b.node && a.pinned === b.pinned && a.smoke === b.smoke;
}

/**
 * The results file after a run: this run's results, plus the previous file's results of the
 * scenarios this run did not attempt (a scenario that failed this time is dropped, not kept stale) —
 * provided the previous file is a valid results file from the same setup. `why` says why nothing
 * was kept, when something could have been.
 */
export function mergeResults(
  previous: unknown,
  run: { machine: Machine; attempted: readonly string[]; results: readonly RecordedResult[] },
): { file: ResultsFile; why?: string } {
  const fresh: ResultsFile = { machine: run.machine, results: [...run.results] };
  if (previous === undefined) return { file: fresh };
  const parsed = resultsFileSchema.safeParse(previous);
  if (!parsed.success) return { file: fresh, why: `the previous file is not a results file (${z.prettifyError(parsed.error).split('\n')[0]})` };
  if (!sameSetup(parsed.data.machine, run.machine)) return { file: fresh, why: 'the previous results come from another machine, Node or mode' };
  const attempted = new Set(run.attempted);
  const ran = new Map(run.results.map((result) => [result.file, result]));
  const results: RecordedResult[] = [];
  // In the previous file's order, this run's result in place of the old one; new files at the end.
  for (const old of parsed.data.results) {
    if (!attempted.has(old.file)) results.push(old);
    else if (ran.has(old.file)) {
      results.push(ran.get(old.file)!);
      ran.delete(old.file);
    }
  }
  results.push(...ran.values());
  return { file: { machine: run.machine, results } };
}

const format = (value: number | null | undefined) =>
  typeof value !== 'number' || !Number.isFinite(value)
    ? 'n/a'
    : Math.abs(value) >= 100
      ? value.toFixed(0)
      : Math.abs(value) >= 10
        ? value.toFixed(1)
        : value.toFixed(2);

/** latest.md: a table per scenario, each with the time it was measured. */
export function renderMarkdown({ machine, results }: ResultsFile): string {
  const lines = [
    '# Lockstep benchmarks',
    '',
    `${machine.cores} cores (${machine.cpu}), Node ${machine.node}, ${machine.pinned ? 'pinned to one core' : 'not pinned'}${machine.smoke ? ', SMOKE SIZES (not meaningful)' : ''}; last run ${machine.date}.`,
    'Every scenario measures Lockstep and its baselines in the same run, interleaved; figures are medians. Each scenario says when it was measured.',
    '',
  ];
  for (const result of results) {
    const metrics = Object.keys(result.units);
    lines.push(`## ${result.scenario}`, '', `Measured ${result.measuredAt} (\`bench/${result.file}\`).`, '', result.description, '');
    lines.push(`| subject | ${metrics.map((metric) => `${metric} (${result.units[metric]})`).join(' | ')} |`);
    lines.push(`| --- | ${metrics.map(() => '---').join(' | ')} |`);
    for (const row of result.rows) lines.push(`| ${row.subject} | ${metrics.map((metric) => format(row.metrics[metric])).join(' | ')} |`);
    lines.push('');
    for (const [name, value] of Object.entries(result.ratios ?? {})) lines.push(`- ${name}: **${format(value)}**`);
    for (const note of result.notes ?? []) lines.push(`- ${note}`);
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * `pnpm bench`: runs every benchmark in bench/*.bench.ts, each in its own process pinned to one
 * core (PERFORMANCE.md: on a 2-core machine only same-run ratios on a pinned core hold), and
 * writes bench/results/latest.md (for people) and bench/results/latest.json.
 *
 * A benchmark module prints one line `BENCH_RESULT <json>` with a {@link BenchResult}.
 * `pnpm bench -- --smoke` runs tiny sizes (what CI does to keep them working); a name filters:
 * `pnpm bench -- ws`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';

export interface BenchRow {
  /** What was measured, e.g. "lockstep (json)" or "raw ws echo". */
  subject: string;
  /** Metric name → median value. */
  metrics: Record<string, number>;
}

export interface BenchResult {
  scenario: string;
  description: string;
  /** Units of each metric, e.g. { p50: 'µs' }. */
  units: Record<string, string>;
  rows: BenchRow[];
  /** Ratios the scenario cares about, e.g. { 'p99 lockstep / raw': 1.8 }. */
  ratios?: Record<string, number>;
  notes?: string[];
}

const here = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2).filter((arg) => arg !== '--');
const smoke = args.includes('--smoke');
const filters = args.filter((arg) => !arg.startsWith('--'));
const files = readdirSync(here)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

const pin = spawnSync('taskset', ['--version']).status === 0 ? ['taskset', '-c', '0'] : [];
const results: BenchResult[] = [];
let failed = 0;
for (const file of files) {
  const command = [...pin, process.execPath, '--conditions=lockstep-source', '--import', 'tsx', `${here}${file}`];
  console.error(`▶ ${file}${smoke ? ' (smoke)' : ''}${pin.length ? ' pinned to core 0' : ''}`);
  const child = spawnSync(command[0]!, command.slice(1), {
    env: { ...process.env, LOCKSTEP_BENCH_SMOKE: smoke ? '1' : '' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = child.stdout.split('\n').find((candidate) => candidate.startsWith('BENCH_RESULT '));
  if (child.status !== 0 || !line) {
    failed++;
    console.error(`✗ ${file} failed (exit ${child.status})\n${child.stdout}`);
    continue;
  }
  results.push(JSON.parse(line.slice('BENCH_RESULT '.length)) as BenchResult);
}

const machine = {
  cores: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  pinned: pin.length > 0,
  smoke,
  date: new Date().toISOString(),
};
// NaN (a ratio with a missing subject) arrives as null through JSON.
const format = (value: number | null | undefined) =>
  typeof value !== 'number' || !Number.isFinite(value) ? 'n/a' : Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 10 ? value.toFixed(1) : value.toFixed(2);
const markdown = [
  '# Lockstep benchmarks',
  '',
  `${machine.cores} cores (${machine.cpu}), Node ${machine.node}, ${machine.pinned ? 'pinned to one core' : 'not pinned'}${smoke ? ', SMOKE SIZES (not meaningful)' : ''}, ${machine.date}.`,
  'Every scenario measures Lockstep and its baselines in the same run, interleaved; figures are medians.',
  '',
];
for (const result of results) {
  const metrics = Object.keys(result.units);
  markdown.push(`## ${result.scenario}`, '', result.description, '');
  markdown.push(`| subject | ${metrics.map((metric) => `${metric} (${result.units[metric]})`).join(' | ')} |`);
  markdown.push(`| --- | ${metrics.map(() => '---').join(' | ')} |`);
  for (const row of result.rows) markdown.push(`| ${row.subject} | ${metrics.map((metric) => format(row.metrics[metric] ?? Number.NaN)).join(' | ')} |`);
  markdown.push('');
  for (const [name, value] of Object.entries(result.ratios ?? {})) markdown.push(`- ${name}: **${format(value)}**`);
  for (const note of result.notes ?? []) markdown.push(`- ${note}`);
  markdown.push('');
}
const out = `${here}results/`;
mkdirSync(out, { recursive: true });
writeFileSync(`${out}latest.json`, `${JSON.stringify({ machine, results }, null, 2)}\n`);
writeFileSync(`${out}latest.md`, `${markdown.join('\n')}\n`);
console.log(markdown.join('\n'));
if (failed > 0) process.exit(1);

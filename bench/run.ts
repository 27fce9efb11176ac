/**
 * `pnpm bench`: runs every benchmark in bench/*.bench.ts, each in its own process pinned to one
 * core (PERFORMANCE.md: on a 2-core machine only same-run ratios on a pinned core hold), and
 * writes bench/results/latest.md (for people) and bench/results/latest.json.
 *
 * A benchmark module prints one line `BENCH_RESULT <json>` with a {@link BenchResult}.
 * `pnpm bench -- --smoke` runs tiny sizes (what CI does to keep them working); a name filters:
 * `pnpm bench -- ws`. A filtered run keeps the other scenarios' figures from the previous
 * latest.json when it comes from the same machine and mode (see `mergeResults`).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchResultSchema, mergeResults, renderMarkdown, type Machine, type RecordedResult } from './results.js';

export type { BenchResult } from './results.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const args = process.argv.slice(2).filter((arg) => arg !== '--');
const smoke = args.includes('--smoke');
const filters = args.filter((arg) => !arg.startsWith('--'));
const files = readdirSync(here)
  .filter((file) => file.endsWith('.bench.ts'))
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort();

const pin = spawnSync('taskset', ['--version']).status === 0 ? ['taskset', '-c', '0'] : [];
const results: RecordedResult[] = [];
let failed = 0;
for (const file of files) {
  const command = [...pin, process.execPath, '--conditions=lockstep-source', '--import', 'tsx', `${here}${file}`];
  console.error(`▶ ${file}${smoke ? ' (smoke)' : ''}${pin.length ? ' pinned to core 0' : ''}`);
  const child = spawnSync(command[0]!, command.slice(1), {
    // Production mode, as deployed: Logux's log skips its development checks (immer's differ only in error messages).
    env: { ...process.env, NODE_ENV: 'production', LOCKSTEP_BENCH_SMOKE: smoke ? '1' : '' },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 * 1024 * 1024,
  });
  const line = child.stdout.split('\n').find((candidate) => candidate.startsWith('BENCH_RESULT '));
  const parsed = line === undefined ? undefined : benchResultSchema.safeParse(parseJson(line.slice('BENCH_RESULT '.length)));
  if (child.status !== 0 || !parsed?.success) {
    failed++;
    const why = parsed && !parsed.success ? `its BENCH_RESULT does not fit the schema: ${parsed.error.message}` : `exit ${child.status}`;
    console.error(`✗ ${file} failed (${why})\n${child.stdout}`);
    continue;
  }
  results.push({ ...parsed.data, file, measuredAt: new Date().toISOString() });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const machine: Machine = {
  cores: availableParallelism(),
  cpu: cpus()[0]?.model ?? 'unknown',
  node: process.version,
  pinned: pin.length > 0,
  smoke,
  date: new Date().toISOString(),
};
const out = `${here}results/`;
mkdirSync(out, { recursive: true });
let previous: unknown;
if (existsSync(`${out}latest.json`)) {
  try {
    previous = JSON.parse(readFileSync(`${out}latest.json`, 'utf8'));
  } catch (error) {
    previous = { unreadable: (error as Error).message };
  }
}
const { file: merged, why } = mergeResults(previous, { machine, attempted: files, results });
if (why && filters.length > 0) console.error(`bench: keeping no earlier results: ${why}`);
const markdown = renderMarkdown(merged);
writeFileSync(`${out}latest.json`, `${JSON.stringify(merged, null, 2)}\n`);
writeFileSync(`${out}latest.md`, markdown);
console.log(markdown);
if (failed > 0) process.exit(1);

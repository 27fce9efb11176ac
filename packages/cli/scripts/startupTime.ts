/**
 * How long `lockstep --help` takes to start, beside a bare `node -e 0`: each command spawned
 * `--runs` times (default 30), interleaved so that a busy machine slows them alike; prints the
 * fastest and the median wall time and their ratio to `node -e 0`. Also times the launcher's
 * freshness check alone. Figures for docs/cli.md ("Start-up time"):
 *
 *   node --import tsx packages/cli/scripts/startupTime.ts [--runs 30] [--with-tsx]
 *
 * `--with-tsx` adds the command as it ran before it was a program (tsx compiling the sources at
 * every call). Run from the repository root after `pnpm install`.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const { values } = parseArgs({ options: { runs: { type: 'string', default: '30' }, 'with-tsx': { type: 'boolean', default: false } } });
const runs = Number(values.runs);

const commands: Array<[label: string, program: string, args: string[]]> = [
  ['node -e 0', process.execPath, ['-e', '0']],
  ['node_modules/.bin/lockstep --help', join(ROOT, 'node_modules/.bin/lockstep'), ['--help']],
  ['pnpm exec lockstep --help', 'pnpm', ['exec', 'lockstep', '--help']],
  ['pnpm lockstep --help', 'pnpm', ['lockstep', '--help']],
  // What pnpm itself takes before it runs anything: the part of the two lines above that is pnpm's.
  ['pnpm --version', 'pnpm', ['--version']],
];
if (values['with-tsx']) {
  commands.push([
    'tsx packages/cli/src/main.ts --help (before)',
    process.execPath,
    ['--conditions=lockstep-source', '--import', 'tsx', 'packages/cli/src/main.ts', '--help'],
  ]);
}

const times = commands.map((): number[] => []);
for (let run = 0; run < runs; run++) {
  commands.forEach(([label, program, args], index) => {
    const started = process.hrtime.bigint();
    const result = spawnSync(program, args, { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    if (result.status !== 0) throw new Error(`${label} exited with ${result.status}`);
    times[index]!.push(Number(process.hrtime.bigint() - started) / 1e6);
  });
}

const stats = times.map((list) => {
  const sorted = [...list].sort((a, b) => a - b);
  return { min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]! };
});
const base = stats[0]!;
console.log(`${runs} runs each, interleaved (wall time, ms)\n`);
console.log(`${'command'.padEnd(48)}${'fastest'.padStart(9)}${'median'.padStart(9)}   × node -e 0 (fastest, median)`);
commands.forEach(([label], index) => {
  const { min, median } = stats[index]!;
  console.log(
    `${label.padEnd(48)}${min.toFixed(0).padStart(9)}${median.toFixed(0).padStart(9)}   ${(min / base.min).toFixed(2)}, ${(median / base.median).toFixed(2)}`,
  );
});

// The launcher's freshness check on its own, in this process: what every call pays.
const { staleReason } = (await import(pathToFileURL(join(ROOT, 'packages/cli/bin/bundle.js')).href)) as { staleReason(): string | undefined };
const reason = staleReason();
const checks = 200;
const started = process.hrtime.bigint();
for (let i = 0; i < checks; i++) staleReason();
const perCheck = Number(process.hrtime.bigint() - started) / 1e6 / checks;
console.log(`\nfreshness check (bin/bundle.js staleReason): ${perCheck.toFixed(2)} ms per call (${reason ?? 'fresh'})`);

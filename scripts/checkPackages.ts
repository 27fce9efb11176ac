/**
 * `pnpm check:packages`: what a release would publish, checked. Builds every published package from
 * clean, packs each with `pnpm pack` into a temporary folder, and runs on every tarball:
 * publint (strict), Are the Types Wrong (ESM-only profile), and Lockstep's own rules (metadata,
 * README and LICENSE, no tests or stale build output, imports match dependencies, bin shebang).
 *
 *   pnpm check:packages            # everything; exit code 1 on any problem
 *   pnpm check:packages --keep     # also keep the tarballs and print where they are
 *
 * The pack smoke test (packages/tests/src/publishedPackages.test.ts) runs the same checks in CI.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkTarballs, cleanBuild, packAll, publishedPackages } from './packages.js';

const keep = process.argv.includes('--keep');
const started = performance.now();
const packages = publishedPackages();
const work = mkdtempSync(join(tmpdir(), 'lockstep-check-packages-'));

try {
  console.log(`building ${packages.length} packages from clean…`);
  await cleanBuild(packages);
  const tarballs = await packAll(packages, work);
  const { reports, peerChains } = await checkTarballs(packages, tarballs, work);
  for (const { name, tarball, problems } of reports) {
    const size = `${String(tarball.files.length).padStart(4)} files ${(tarball.bytes / 1024).toFixed(1).padStart(7)} kB packed`;
    console.log(`${problems.length ? 'FAIL' : 'ok  '}  ${name.padEnd(20)} ${size}`);
    for (const problem of problems) console.log(`        ${problem.replaceAll('\n', '\n        ')}`);
  }
  for (const problem of peerChains) console.log(`FAIL  ${problem}`);
  const failed = reports.filter(({ problems }) => problems.length > 0).length;
  console.log(
    `\n${packages.length - failed} of ${packages.length} packages pass${peerChains.length ? ', peer chains fail' : ''} (${((performance.now() - started) / 1000).toFixed(1)} s)`,
  );
  process.exitCode = failed || peerChains.length ? 1 : 0;
  if (keep) console.log(`tarballs kept in ${work}`);
} finally {
  if (!keep) rmSync(work, { recursive: true, force: true });
}

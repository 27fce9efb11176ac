#!/usr/bin/env node
// The `lockstep` command.
// - Installed from npm: runs dist/main.js, compiled by `tsc -b` for the release.
// - In a checkout of the repository (tsconfig.json beside this folder): runs a bundle of the current
//   sources, first rebuilt (a fraction of a second, messages on stderr) when any source changed
//   since it was made, so it is never stale; see bundle.js and build.js.
// Plain JavaScript on purpose: it runs before anything is compiled. It starts no process of its own:
// signals reach the command directly.
import { existsSync } from 'node:fs';

let entry = new URL('../dist/main.js', import.meta.url);
if (existsSync(new URL('../tsconfig.json', import.meta.url))) {
  const { BUNDLE_ENTRY, staleReason } = await import('./bundle.js');
  const reason = staleReason();
  if (reason !== undefined) {
    const { buildBundle } = await import('./build.js');
    await buildBundle({ reason });
  }
  entry = BUNDLE_ENTRY;
}
await import(entry.href);

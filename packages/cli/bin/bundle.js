// @ts-check
/**
 * Where the `lockstep` command of a repository checkout lives, and whether it is up to date.
 *
 * In a checkout the command runs from one bundle of the TypeScript sources (build.js makes it with
 * esbuild): one file loads in a fraction of the time of the ~300 modules of the compiled packages.
 * The bundle is kept under node_modules/.cache (never published, never removed by a clean build)
 * with a manifest of every file it was made from. It is fresh while each of those files exists and
 * is no newer than the moment the build started; anything else rebuilds it before the command runs.
 *
 * Plain JavaScript on purpose: it runs before anything is compiled.
 */
import { readFileSync, statSync } from 'node:fs';

/** packages/cli/ */
export const CLI_DIR = new URL('..', import.meta.url);
/** The bundle's folder. */
export const BUNDLE_DIR = new URL('node_modules/.cache/lockstep-bin/', CLI_DIR);
/** The bundle's entry, bundled from src/main.ts. */
export const BUNDLE_ENTRY = new URL('lockstep.js', BUNDLE_DIR);
/** What the bundle was made from and when: `{ startedAt, inputs }`, input paths relative to packages/cli/. */
export const BUNDLE_MANIFEST = new URL('manifest.json', BUNDLE_DIR);

/**
 * Why the bundle must be rebuilt, or undefined when it is fresh. A few hundred `stat` calls: about
 * a millisecond or two (docs/cli.md has the figures).
 */
export function staleReason() {
  /** @type {{ startedAt: number; inputs: string[] }} */
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(BUNDLE_MANIFEST, 'utf8'));
    statSync(BUNDLE_ENTRY);
  } catch {
    return 'no bundle yet';
  }
  for (const input of manifest.inputs) {
    let mtimeMs;
    try {
      ({ mtimeMs } = statSync(new URL(input, CLI_DIR)));
    } catch {
      return `${input} is gone`;
    }
    if (mtimeMs > manifest.startedAt) return `${input} changed`;
  }
  return undefined;
}

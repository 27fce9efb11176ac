// @ts-check
/**
 * Builds the `lockstep` command of a repository checkout: src/main.ts and everything it imports
 * (the `@lockstep/*` sources through their `lockstep-source` condition, and the third-party packages)
 * bundled by esbuild into node_modules/.cache/lockstep-bin/, code-split so that a command loads only
 * what it runs (`lockstep --help` never loads the hub). esbuild only strips types: type checking is
 * `tsc -b`'s job, as before (`pnpm test`, `pnpm typecheck`).
 *
 * Run by the launcher (bin/lockstep.js) when the bundle is stale, and by the root `prepare` script
 * after every `pnpm install` (`node packages/cli/bin/build.js`, which always rebuilds: the installed
 * third-party packages may have changed). Concurrent builds wait for each other (a lock directory).
 * Messages go to stderr only: stdout belongs to the command.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BUNDLE_DIR, BUNDLE_ENTRY, BUNDLE_MANIFEST, CLI_DIR, staleReason } from './bundle.js';

const cliDir = fileURLToPath(CLI_DIR);
const bundleDir = fileURLToPath(BUNDLE_DIR);
const lockDir = join(dirname(bundleDir), 'lockstep-bin.lock');
/** A lock older than this was left by a build that died; the next build takes it over. */
const STALE_LOCK_MS = 60_000;
/** Chunks of an earlier build are kept this long: a command started before the rebuild may still load one. */
const OLD_CHUNK_MS = 10 * 60_000;

/** Optional packages that are loaded only when present (native speedups, other runtimes): left out. */
const EXTERNAL = ['bufferutil', 'utf-8-validate', 'pg-native', 'pg-cloudflare'];

/**
 * Rebuilds the bundle unless, once the lock is held, it turns out fresh (another process built it
 * meanwhile). `force` rebuilds regardless.
 * @param {{ reason?: string; force?: boolean; log?: (line: string) => void }} [options]
 */
export async function buildBundle({ reason, force = false, log = (line) => process.stderr.write(`${line}\n`) } = {}) {
  await withLock(async () => {
    if (!force && staleReason() === undefined) return;
    const started = Date.now();
    const esbuild = await import('esbuild');
    try {
      log(`lockstep: bundling the command from its sources${reason ? ` (${reason})` : ''}…`);
      const result = await esbuild.build({
        absWorkingDir: cliDir,
        entryPoints: { lockstep: 'src/main.ts' },
        outdir: bundleDir,
        chunkNames: 'chunk-[hash]',
        bundle: true,
        splitting: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        conditions: ['lockstep-source'],
        external: EXTERNAL,
        plugins: [preferEsm(['rxjs'])],
        // The CommonJS packages (ws, pg, rxjs) call require(); an ES module has none of its own.
        banner: { js: "import { createRequire as __lockstepCreateRequire } from 'node:module'; const require = __lockstepCreateRequire(import.meta.url);" },
        minifyWhitespace: true,
        minifySyntax: true,
        sourcemap: 'linked',
        sourcesContent: false,
        legalComments: 'none',
        metafile: true,
        write: false,
        logLevel: 'warning',
      });
      writeOutputs(result.outputFiles, inputsOf(result.metafile), started);
      log(`lockstep: bundled in ${Date.now() - started} ms`);
    } finally {
      await esbuild.stop();
    }
  });
}

/**
 * Resolves these packages to their ES module build (their `es2015` export), which esbuild can
 * tree-shake, where their `exports` give Node the CommonJS one first (rxjs: `node` before `es2015`),
 * all of which would load.
 * @param {string[]} names
 * @returns {import('esbuild').Plugin}
 */
function preferEsm(names) {
  return {
    name: 'prefer-esm',
    setup(build) {
      build.onResolve({ filter: new RegExp(`^(?:${names.join('|')})$`) }, async (args) => {
        const manifest = await build.resolve(`${args.path}/package.json`, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer });
        if (manifest.errors.length > 0) return undefined;
        const target = JSON.parse(readFileSync(manifest.path, 'utf8')).exports?.['.']?.es2015;
        return typeof target === 'string' ? { path: join(dirname(manifest.path), target) } : undefined;
      });
    },
  };
}

/**
 * The files a rebuild depends on, relative to packages/cli/: every workspace source in the bundle,
 * the package.json and tsconfig.json of each workspace package they belong to (exports, compiler
 * settings esbuild reads), the shared tsconfig, this script, and the package.json of each
 * third-party package (a new version is a new path).
 * @param {import('esbuild').Metafile} metafile
 */
function inputsOf(metafile) {
  const inputs = new Set(['../../tsconfig.base.json', 'bin/build.js', 'bin/bundle.js']);
  for (const input of Object.keys(metafile.inputs)) {
    const thirdParty = /^(.*\/node_modules\/(?:@[^/]+\/)?[^/@.][^/]*)\//.exec(input);
    if (thirdParty) {
      inputs.add(`${thirdParty[1]}/package.json`);
      continue;
    }
    inputs.add(input);
    const workspacePackage = /^((?:\.\.\/[^/]+\/)?)src\//.exec(input);
    if (workspacePackage) {
      inputs.add(`${workspacePackage[1]}package.json`);
      inputs.add(`${workspacePackage[1]}tsconfig.json`);
    }
  }
  return [...inputs].sort();
}

/**
 * Writes chunks first and the entry and manifest last, each by rename, so a command starting
 * meanwhile loads either the old bundle or the new one. Chunks of earlier builds go after a while.
 * @param {import('esbuild').OutputFile[]} outputFiles
 * @param {string[]} inputs
 * @param {number} startedAt
 */
function writeOutputs(outputFiles, inputs, startedAt) {
  mkdirSync(bundleDir, { recursive: true });
  const entryPath = fileURLToPath(BUNDLE_ENTRY);
  const written = new Set();
  const replace = (/** @type {string} */ path, /** @type {string | Uint8Array} */ contents) => {
    const temporary = `${path}.${process.pid}.tmp`;
    writeFileSync(temporary, contents);
    renameSync(temporary, path);
    written.add(basename(path));
  };
  const ordered = [...outputFiles].sort((a, b) => Number(a.path === entryPath) - Number(b.path === entryPath));
  for (const file of ordered) replace(file.path, file.contents);
  replace(fileURLToPath(BUNDLE_MANIFEST), `${JSON.stringify({ startedAt, inputs }, null, 1)}\n`);
  for (const name of readdirSync(bundleDir)) {
    if (written.has(name)) continue;
    const path = join(bundleDir, name);
    try {
      if (Date.now() - statSync(path).mtimeMs > OLD_CHUNK_MS || name.endsWith('.tmp')) rmSync(path, { force: true });
    } catch {
      // Removed by a concurrent cleanup.
    }
  }
}

/**
 * Runs `fn` holding the build lock (a directory: `mkdir` is atomic), waiting for another build to
 * finish first.
 * @param {() => Promise<void>} fn
 */
async function withLock(fn) {
  mkdirSync(dirname(lockDir), { recursive: true });
  for (;;) {
    try {
      mkdirSync(lockDir);
      break;
    } catch (error) {
      if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'EEXIST') throw error;
    }
    try {
      if (Date.now() - statSync(lockDir).mtimeMs > STALE_LOCK_MS) rmSync(lockDir, { recursive: true, force: true });
    } catch {
      // Released meanwhile.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  try {
    await fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

// `node packages/cli/bin/build.js` (the root `prepare` script): always rebuild.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildBundle({ force: true, reason: 'prepare' });
  const entry = relative(process.cwd(), fileURLToPath(BUNDLE_ENTRY)).split(sep).join('/');
  process.stderr.write(`lockstep: ${entry} is the \`lockstep\` command of this checkout (pnpm lockstep …, pnpm exec lockstep …)\n`);
}

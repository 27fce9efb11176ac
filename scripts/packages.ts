/**
 * The published `@lockstep/*` packages as users get them: a clean build, `pnpm pack`, and the checks
 * every tarball must pass (publint, Are the Types Wrong, and Lockstep's own rules on contents and
 * imports). Used by `pnpm check:packages` (scripts/checkPackages.ts) and by the pack smoke test
 * (packages/tests/src/publishedPackages.test.ts), so CI and a release run the same checks.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';

const run = promisify(execFile);

/** The repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Where every published package says it lives; `directory` is added per package. */
export const REPOSITORY_URL = 'git+https://github.com/lockstep-dev/lockstep.git';

/** The fields of a package.json these checks read. */
export interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  description?: string;
  license?: string;
  keywords?: string[];
  repository?: { type?: string; url?: string; directory?: string };
  type?: string;
  sideEffects?: boolean;
  engines?: { node?: string };
  bin?: Record<string, string>;
  exports?: Record<string, string | Record<string, string>>;
  files?: string[];
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
}

export interface WorkspacePackage {
  /** Folder name under packages/ (`core`, `ws`, …). */
  dir: string;
  /** Absolute path of the package folder. */
  path: string;
  manifest: Manifest;
}

/** Every package under packages/ that is not private, in folder order. */
export function publishedPackages(root = ROOT): WorkspacePackage[] {
  const packagesDir = join(root, 'packages');
  return readdirSync(packagesDir)
    .filter((dir) => existsSync(join(packagesDir, dir, 'package.json')))
    .map((dir) => {
      const path = join(packagesDir, dir);
      return { dir, path, manifest: JSON.parse(readFileSync(join(path, 'package.json'), 'utf8')) as Manifest };
    })
    .filter(({ manifest }) => !manifest.private)
    .sort((a, b) => a.dir.localeCompare(b.dir));
}

/**
 * Removes every package's `dist/` and build info, then builds the packages with `tsc -b`. `tsc -b`
 * never deletes outputs of sources that are gone, so an incremental build can publish stale files.
 */
export async function cleanBuild(packages: WorkspacePackage[], root = ROOT): Promise<void> {
  for (const { path } of packages) {
    rmSync(join(path, 'dist'), { recursive: true, force: true });
    rmSync(join(path, 'node_modules', '.tmp'), { recursive: true, force: true });
  }
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await run(process.execPath, [tsc, '-b', ...packages.map(({ path }) => relative(root, path))], { cwd: root, maxBuffer: 64 << 20 });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`tsc -b failed:\n${stdout}${stderr}`);
  }
}

export interface Tarball {
  name: string;
  version: string;
  /** Absolute path of the .tgz file. */
  file: string;
  /** Paths inside the package, e.g. `dist/index.js`. */
  files: string[];
  bytes: number;
}

/**
 * `pnpm pack` of each package into `destination` (pnpm turns `workspace:*` into the version). One
 * recursive pnpm call: about a second for all of them.
 */
export async function packAll(packages: WorkspacePackage[], destination: string, root = ROOT): Promise<Map<string, Tarball>> {
  const filters = packages.flatMap(({ manifest }) => ['--filter', manifest.name]);
  const { stdout } = await run('pnpm', ['-r', ...filters, 'pack', '--pack-destination', destination, '--json'], {
    cwd: root,
    maxBuffer: 64 << 20,
  });
  const parsed = JSON.parse(stdout) as Array<{ name: string; version: string; filename: string; files: Array<{ path: string }> }> | { name: string };
  const list = Array.isArray(parsed) ? parsed : [parsed as typeof parsed & { version: string; filename: string; files: Array<{ path: string }> }];
  const tarballs = new Map<string, Tarball>();
  for (const { name, version, filename, files } of list) {
    tarballs.set(name, { name, version, file: filename, files: files.map(({ path }) => path).sort(), bytes: statSync(filename).size });
  }
  for (const { manifest } of packages) {
    if (!tarballs.has(manifest.name)) throw new Error(`pnpm pack made no tarball for ${manifest.name}`);
  }
  return tarballs;
}

/** Unpacks a tarball into `directory` (its files land in `directory/package/`). */
export async function unpack(tarball: Tarball, directory: string): Promise<string> {
  await run('tar', ['-xzf', tarball.file, '-C', directory]);
  return join(directory, 'package');
}

/** publint on the tarball, warnings counted as errors. Returns one line per problem. */
export async function runPublint(tarball: Tarball): Promise<string[]> {
  const data = readFileSync(tarball.file);
  const { messages, pkg } = await publint({
    pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) },
    strict: true,
  });
  return messages.map((message) => `publint ${message.type} ${message.code}: ${formatMessage(message, pkg, { color: false }) ?? ''}`);
}

/**
 * Are the Types Wrong on the tarball. Lockstep is ESM-only, so the `esm-only` profile: `require`
 * and `moduleResolution: node10` are not supported, everything else must resolve to the right types.
 */
export async function runAttw(tarball: Tarball, root = ROOT): Promise<string[]> {
  const attw = join(root, 'node_modules', '.bin', 'attw');
  try {
    await run(attw, [tarball.file, '--profile', 'esm-only', '--no-definitely-typed', '--format', 'ascii', '--no-color', '--no-emoji'], {
      cwd: root,
      maxBuffer: 64 << 20,
    });
    return [];
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    return [`attw: ${`${stdout}${stderr}`.trim()}`];
  }
}

const IMPORT_PATTERNS = [
  /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]/g,
  /(?:^|[\s;])import\s*['"]([^'"]+)['"]/g,
  /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
];

const NODE_BUILTINS = new Set(builtinModules);

/** The package a bare specifier names (`@scope/name` or `name`), or undefined for relative, `node:` and builtins. */
export function packageOfSpecifier(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return NODE_BUILTINS.has(name) ? undefined : name;
}

/** Every bare package an unpacked package's built files import, with the files importing it. */
export function importedPackages(packageDir: string, files: string[]): Map<string, string[]> {
  const found = new Map<string, string[]>();
  for (const file of files) {
    if (!file.startsWith('dist/') || !/\.(?:js|d\.ts)$/.test(file)) continue;
    const text = readFileSync(join(packageDir, file), 'utf8');
    for (const pattern of IMPORT_PATTERNS) {
      for (const match of text.matchAll(pattern)) {
        const name = packageOfSpecifier(match[1]!);
        if (name === undefined) continue;
        const users = found.get(name) ?? [];
        if (!users.includes(file)) users.push(file);
        found.set(name, users);
      }
    }
  }
  return found;
}

/** The module an `@types/*` package describes: `ws` for `@types/ws`, `@scope/name` for `@types/scope__name`. */
function moduleOfTypesPackage(name: string): string {
  const bare = name.slice('@types/'.length);
  return bare.includes('__') ? `@${bare.replace('__', '/')}` : bare;
}

/**
 * Lockstep's own rules for a tarball, which publint and attw do not cover:
 * - the metadata every package carries (description, MIT, keywords, repository, engines, ESM, no side effects);
 * - every file `exports` points at, under any condition, is in the tarball;
 * - a README and a LICENSE, no test files, and no stale build output (a `dist` file without its source);
 * - every package the built code imports is a dependency or peer dependency, and every dependency is
 *   imported or is a required peer of another dependency (pass every manifest as `manifests`);
 * - a `bin` is a built file that starts with a `node` shebang.
 */
export function checkTarballContents(tarball: Tarball, manifest: Manifest, packageDir: string, dir: string, manifests: Manifest[] = []): string[] {
  const problems: string[] = [];
  const files = new Set(tarball.files);
  if (!manifest.description) problems.push('package.json has no description');
  if (manifest.license !== 'MIT') problems.push(`license is ${manifest.license}, not MIT`);
  if (!manifest.keywords?.includes('lockstep')) problems.push('keywords do not include "lockstep"');
  if (manifest.repository?.url !== REPOSITORY_URL || manifest.repository.directory !== `packages/${dir}`) {
    problems.push(`repository should be { url: ${REPOSITORY_URL}, directory: packages/${dir} }`);
  }
  if (!manifest.engines?.node) problems.push('engines.node is missing');
  if (manifest.type !== 'module') problems.push('type is not "module"');
  if (manifest.sideEffects !== false) problems.push('sideEffects is not false');
  // publint checks the conditions it knows; a custom one such as `lockstep-source` is checked here.
  for (const [subpath, target] of exportTargets(manifest.exports)) {
    if (!files.has(target.replace(/^\.\//, ''))) problems.push(`exports["${subpath}"] points at ${target}, which is not in the tarball`);
  }
  for (const required of ['package.json', 'README.md', 'LICENSE']) {
    if (!files.has(required)) problems.push(`${required} is not in the tarball`);
  }
  for (const file of files) {
    if (/\.test(?:-d)?\.tsx?$|\.test\.js$|(^|\/)(?:test|fixtures)\//.test(file)) problems.push(`test file in the tarball: ${file}`);
    const built = /^dist\/(.+?)\.(?:js|d\.ts)(?:\.map)?$/.exec(file);
    if (built && !files.has(`src/${built[1]}.ts`) && !files.has(`src/${built[1]}.tsx`)) problems.push(`stale build output (no source): ${file}`);
  }

  const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
  const imported = importedPackages(packageDir, tarball.files);
  for (const [name, users] of imported) {
    if (name === manifest.name) continue;
    if (!declared.has(name)) problems.push(`imports ${name} (${users.slice(0, 3).join(', ')}) but does not depend on it`);
  }
  const peersOfDependencies = requiredPeersOfDependencies(manifest, manifests);
  for (const name of Object.keys(manifest.dependencies ?? {})) {
    if (peersOfDependencies.has(name)) continue;
    if (!imported.has(name.startsWith('@types/') ? moduleOfTypesPackage(name) : name)) {
      problems.push(`depends on ${name}, which nothing in dist imports`);
    }
  }

  for (const [command, target] of Object.entries(manifest.bin ?? {})) {
    const path = target.replace(/^\.\//, '');
    if (!files.has(path)) {
      problems.push(`bin ${command} → ${target} is not in the tarball`);
    } else if (!readFileSync(join(packageDir, path), 'utf8').startsWith('#!/usr/bin/env node\n')) {
      problems.push(`bin ${command} → ${target} does not start with "#!/usr/bin/env node"`);
    }
  }
  return problems;
}

/** Every (subpath, file) pair of an `exports` map, through nested conditions. */
function exportTargets(exportsMap: Manifest['exports']): Array<[string, string]> {
  const targets: Array<[string, string]> = [];
  const walk = (subpath: string, value: unknown): void => {
    if (typeof value === 'string') targets.push([subpath, value]);
    else if (value && typeof value === 'object') for (const nested of Object.values(value)) walk(subpath, nested);
  };
  for (const [subpath, value] of Object.entries(exportsMap ?? {})) walk(subpath, value);
  return targets;
}

/** The required peers of a package's `@lockstep/*` dependencies, which it must provide itself. */
function requiredPeersOfDependencies(manifest: Manifest, manifests: Manifest[]): Set<string> {
  const peers = new Set<string>();
  for (const dependency of Object.keys(manifest.dependencies ?? {})) {
    const target = manifests.find(({ name }) => name === dependency);
    for (const peer of Object.keys(target?.peerDependencies ?? {})) {
      if (!target?.peerDependenciesMeta?.[peer]?.optional) peers.add(peer);
    }
  }
  return peers;
}

/**
 * A regular dependency's required peers must be provided by the package that depends on it (as a
 * dependency or a peer), or installs with strict peer checks fail. Checked across all tarballs.
 */
export function checkPeerChains(manifests: Manifest[]): string[] {
  const byName = new Map(manifests.map((manifest) => [manifest.name, manifest]));
  const problems: string[] = [];
  for (const manifest of manifests) {
    const provided = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})]);
    for (const dependency of Object.keys(manifest.dependencies ?? {})) {
      const target = byName.get(dependency);
      if (!target) continue;
      for (const peer of Object.keys(target.peerDependencies ?? {})) {
        if (target.peerDependenciesMeta?.[peer]?.optional) continue;
        if (!provided.has(peer)) problems.push(`${manifest.name} depends on ${dependency}, whose peer ${peer} it neither depends on nor declares as a peer`);
      }
    }
  }
  return problems;
}

export interface TarballReport {
  name: string;
  tarball: Tarball;
  /** One line per problem; empty when the tarball passes. */
  problems: string[];
}

/**
 * Every check on every tarball: publint, Are the Types Wrong and the contents rules, on the
 * package.json inside the tarball (what is published, `workspace:*` already replaced), then the peer
 * chains across all of them. Runs `concurrency` packages at a time; unpacks into `work`.
 */
export async function checkTarballs(
  packages: WorkspacePackage[],
  tarballs: Map<string, Tarball>,
  work: string,
  concurrency = 2,
): Promise<{ reports: TarballReport[]; peerChains: string[] }> {
  const unpacked = await Promise.all(
    packages.map(async ({ dir, manifest }) => {
      const tarball = tarballs.get(manifest.name)!;
      const directory = await unpack(tarball, mkdtempSync(join(work, `${dir}-`)));
      return { dir, tarball, directory, manifest: JSON.parse(readFileSync(join(directory, 'package.json'), 'utf8')) as Manifest };
    }),
  );
  const manifests = unpacked.map(({ manifest }) => manifest);
  const reports: TarballReport[] = new Array(unpacked.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, unpacked.length) }, async () => {
      while (next < unpacked.length) {
        const index = next++;
        const { dir, tarball, directory, manifest } = unpacked[index]!;
        const problems = [...(await runPublint(tarball)), ...(await runAttw(tarball)), ...checkTarballContents(tarball, manifest, directory, dir, manifests)];
        reports[index] = { name: manifest.name, tarball, problems };
      }
    }),
  );
  return { reports, peerChains: checkPeerChains(manifests) };
}

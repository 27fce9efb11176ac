/**
 * A fresh npm project outside the workspace with the packed `@lockstep/*` tarballs installed, for the
 * pack smoke test (publishedPackages.test.ts). Nothing is cached between runs: every run packs,
 * creates a new project under os.tmpdir() and installs into it (npm's own download cache aside).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ROOT, type Tarball } from '../../../scripts/packages.js';
import { serveEnv } from './serveEnv.js';

const run = promisify(execFile);

/** The files copied into the project (see packages/tests/consumer/README.md). */
export const CONSUMER_DIR = fileURLToPath(new URL('../consumer/', import.meta.url));

/** The version of `name` the workspace installed for the package in `packageDir` (e.g. `packages/react`). */
function workspaceVersion(packageDir: string, name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, packageDir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * Third-party packages the project installs next to the tarballs, at the versions the workspace
 * tests with: the peers a user installs (zod, rxjs, react, react-dom) and the types a TypeScript user
 * has. vitest, the testkit's peer, is installed by npm as a peer.
 */
function thirdPartyDependencies(): Record<string, string> {
  return {
    zod: workspaceVersion('packages/core', 'zod'),
    rxjs: workspaceVersion('packages/core', 'rxjs'),
    react: workspaceVersion('packages/react', 'react'),
    'react-dom': workspaceVersion('packages/react', 'react-dom'),
    '@types/react': workspaceVersion('packages/react', '@types/react'),
    '@types/react-dom': workspaceVersion('packages/react', '@types/react-dom'),
    '@types/node': workspaceVersion('.', '@types/node'),
  };
}

export interface SmokeProject {
  dir: string;
  installMs: number;
}

/**
 * Creates the project and runs `npm install` with the tarballs as `file:` dependencies (and as
 * overrides, so a package's dependency on another `@lockstep/*` package at the packed version is
 * the tarball too, never the registry). node-pty's install script is allowed (npm 11 holds install
 * scripts back unless the project allows them) and builds against the local Node headers.
 */
export async function createSmokeProject(tarballs: Iterable<Tarball>): Promise<SmokeProject> {
  const dir = mkdtempSync(join(tmpdir(), 'lockstep-smoke-'));
  const lockstep = Object.fromEntries([...tarballs].map(({ name, file }) => [name, `file:${file}`]));
  const manifest = {
    name: 'lockstep-smoke',
    private: true,
    type: 'module',
    dependencies: { ...lockstep, ...thirdPartyDependencies() },
    overrides: lockstep,
    allowScripts: { 'node-pty': true },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  for (const file of readdirSync(CONSUMER_DIR)) {
    if (file !== 'README.md') cpSync(join(CONSUMER_DIR, file), join(dir, file));
  }
  writeFileSync(
    join(dir, 'tsconfig.json'),
    `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2022', 'DOM', 'DOM.Iterable'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          jsx: 'react-jsx',
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          verbatimModuleSyntax: true,
          skipLibCheck: false,
          noEmit: true,
          types: ['node'],
        },
        files: ['consumer.ts', 'browser.tsx'],
      },
      null,
      2,
    )}\n`,
  );
  const started = performance.now();
  try {
    await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      cwd: dir,
      env: { ...process.env, npm_config_nodedir: process.env.npm_config_nodedir ?? '/usr' },
      maxBuffer: 64 << 20,
      timeout: 300_000,
    });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm install in ${dir} failed:\n${stdout}${stderr}`);
  }
  return { dir, installMs: performance.now() - started };
}

/** Runs `node script …args` in the project; answers its stdout. Fails with its output on a non-zero exit. */
export async function runNode(project: string, script: string, args: string[] = [], timeoutMs = 60_000): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [script, ...args], { cwd: project, timeout: timeoutMs, maxBuffer: 64 << 20, env: serveEnv() });
    return stdout;
  } catch (error) {
    const { stdout = '', stderr = '', code, signal } = error as { stdout?: string; stderr?: string; code?: unknown; signal?: unknown };
    throw new Error(`node ${script} ${args.join(' ')} failed (${String(code ?? signal)}):\n${stdout}${stderr}`);
  }
}

/** The last line of a script's output, parsed as JSON. */
export function lastJsonLine<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

export interface HubProcess {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then the exit code (`lockstep serve` exits 0 when stopped on request). */
  stop(): Promise<number | null>;
}

/**
 * Starts `lockstep serve --port 0` from the project's installed bin (`node_modules/.bin/lockstep`,
 * run as an executable: its shebang must work) and waits for its ready line.
 */
export async function startHubBin(project: string, args: readonly string[] = []): Promise<HubProcess> {
  const child = spawn(join(project, 'node_modules', '.bin', 'lockstep'), ['serve', '--port', '0', ...args], {
    cwd: project,
    env: serveEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const ready = /listening on (ws:\/\/\S+)/.exec(output);
      if (ready) resolve(ready[1]!);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('error', reject);
    void exited.then((code) => reject(new Error(`lockstep serve exited with ${code} before it was ready:\n${output}`)));
  });
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/** Code blocks of the installed READMEs marked as runnable (the comment line right above the fence). */
export function readmeExamples(project: string): Array<{ name: string; code: string }> {
  const marker = '<!-- example: runs in the pack smoke test';
  const examples: Array<{ name: string; code: string }> = [];
  const scope = join(project, 'node_modules', '@lockstep');
  for (const dir of readdirSync(scope).sort()) {
    const readme = readFileSync(join(scope, dir, 'README.md'), 'utf8');
    const pattern = new RegExp(`${marker}[^\\n]*\\n\`\`\`tsx?\\n([\\s\\S]*?)\\n\`\`\`\\n`, 'g');
    for (const match of readme.matchAll(pattern)) examples.push({ name: `@lockstep/${dir}`, code: match[1]! });
  }
  return examples;
}

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build, transform, type Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { ROOT, checkTarballs, cleanBuild, packAll, publishedPackages, type Tarball } from '../../../scripts/packages.js';
import { launchChromium, requireChromium, skipWithoutChromium } from './chromium.js';
import { createSmokeProject, lastJsonLine, readmeExamples, runNode, startHubBin, type SmokeProject } from './smokeProject.js';
import { SERVE_TOKEN } from './serveEnv.js';

/**
 * The pack smoke test: what users install is the built tarball, not the workspace, so that is what
 * is checked. Builds every published package from clean, packs it (`pnpm pack`), runs publint, Are
 * the Types Wrong and the contents rules on every tarball, then installs the tarballs with npm into a
 * fresh project under os.tmpdir() and, there, with plain Node: imports every entry point, type-checks
 * a consumer, runs the README examples, runs a hub and two clients over WebSocket (the installed
 * `lockstep` bin) and over stdio, bundles the client path for browsers (size, no Node-only imports)
 * and runs a React page in headless Chromium. `pnpm check:packages` runs the first half alone.
 */

const skipBrowser = skipWithoutChromium('publishedPackages.test, its Chromium part');

/**
 * Ceiling of the client path (core + client + ws, everything they export) minified and gzipped.
 * Measured at 50 kB; the ceiling catches a Node module, a second copy of a dependency or an
 * `import { z } from 'zod'` (+60 kB, decision 49) slipping into the browser bundle, not a few
 * hundred bytes.
 */
const CLIENT_PATH_GZIP_CEILING = 64 * 1024;

const packages = publishedPackages();
const work = mkdtempSync(join(tmpdir(), 'lockstep-pack-'));
const tarballs = new Map<string, Tarball>();
const timings: string[] = [];

async function timed<T>(label: string, body: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await body();
  } finally {
    timings.push(`${label} ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

beforeAll(async () => {
  await timed('clean build', () => cleanBuild(packages));
  for (const [name, tarball] of await timed('pnpm pack', () => packAll(packages, work))) tarballs.set(name, tarball);
}, 300_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
  console.log(`[publishedPackages.test] ${timings.join(' · ')}`);
});

describe('published packages', () => {
  it('every tarball passes publint, Are the Types Wrong and the contents rules', async () => {
    const { reports, peerChains } = await timed('publint + attw', () => checkTarballs(packages, tarballs, work));
    expect([...reports.flatMap(({ name, problems }) => problems.map((problem) => `${name}: ${problem}`)), ...peerChains]).toEqual([]);
    expect(reports.map(({ name }) => name).sort()).toEqual(packages.map(({ manifest }) => manifest.name).sort());
    // The checks saw real tarballs: the bin and the sources of the lockstep-source condition are in them.
    expect(tarballs.get('@lockstep/cli')!.files).toContain('dist/main.js');
    expect(tarballs.get('@lockstep/core')!.files).toEqual(expect.arrayContaining(['src/index.ts', 'dist/index.js', 'dist/index.d.ts', 'LICENSE', 'README.md']));
  });

  describe('installed with npm into a fresh project outside the workspace', () => {
    let project: SmokeProject;

    beforeAll(async () => {
      project = await timed('npm install', () => createSmokeProject(tarballs.values()));
    }, 600_000);

    afterAll(() => {
      if (project) rmSync(project.dir, { recursive: true, force: true });
    });

    it('imports every entry point in Node ESM, with the same exports as the sources', async () => {
      const installed = lastJsonLine<Record<string, string[]>>(await runNode(project.dir, 'imports.mjs'));
      const expected: Record<string, string[]> = {};
      for (const { manifest, path } of packages) {
        for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
          if (typeof target === 'string') continue; // ./package.json
          const source = pathToFileURL(join(path, target['lockstep-source']!)).href;
          expected[manifest.name + subpath.slice(1)] = Object.keys(await import(/* @vite-ignore */ source)).sort();
        }
      }
      expect(installed).toEqual(expected);
      expect(installed['@lockstep/core']).toContain('defineDomain');
    });

    it('type-checks a consumer against the installed declarations (strict, skipLibCheck off)', async () => {
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
      const output = await timed('type check', () => runNode(project.dir, tsc, ['-p', 'tsconfig.json'], 120_000).catch((error: Error) => error.message));
      expect(output).toBe('');
    });

    it('runs the README examples', async () => {
      const examples = readmeExamples(project.dir);
      expect(examples.map(({ name }) => name)).toEqual(expect.arrayContaining(['@lockstep/client', '@lockstep/core', '@lockstep/server', '@lockstep/ws']));
      for (const [index, { name, code }] of examples.entries()) {
        const file = `readme-${index}.mjs`;
        writeFileSync(join(project.dir, file), (await transform(code, { loader: 'ts', format: 'esm', target: 'node20' })).code);
        const stdout = await runNode(project.dir, file).catch((error: Error) => `FAILED ${name}: ${error.message}`);
        expect(stdout, name).not.toMatch(/^FAILED/);
        expect(stdout.trim(), `${name} prints what it did`).not.toBe('');
      }
    });

    it('runs `lockstep serve` from the installed bin; two clients converge over WebSocket (JSON and msgpack)', async () => {
      const hub = await startHubBin(project.dir);
      onTestFinished(async () => void (await hub.stop()));
      const { clients } = lastJsonLine<{
        clients: Array<{ state: { tasks: Record<string, { title: string }> }; version: number; view: unknown; status: string }>;
      }>(await runNode(project.dir, 'ws.mjs', [hub.url]));
      expect(clients).toHaveLength(2);
      for (const client of clients) {
        expect(client.version).toBe(2);
        expect(client.status).toBe('online');
        expect(client.view).toEqual(client.state);
        expect(
          Object.values(client.state.tasks)
            .map(({ title }) => title)
            .sort(),
        ).toEqual(['over JSON', 'over msgpack']);
      }
      expect(clients[0]!.state).toEqual(clients[1]!.state);
      expect(await hub.stop()).toBe(0);
    });

    it('runs a hub and two client processes over stdio, and a sidecar on `lockstep serve --stdio`', async () => {
      type Confirmed = { state: { tasks: Record<string, { title: string }> }; version: number };
      const result = lastJsonLine<{ hub: Confirmed; clients: Confirmed[]; sidecar: Confirmed & { domains: string[] } }>(
        await runNode(project.dir, 'stdio.mjs'),
      );
      expect(result.hub.version).toBe(2);
      expect(
        Object.values(result.hub.state.tasks)
          .map(({ title }) => title)
          .sort(),
      ).toEqual(['from one', 'from two']);
      expect(result.clients).toEqual([result.hub, result.hub]);
      expect(result.sidecar.domains).toEqual(expect.arrayContaining(['focus', 'orchestration', 'tasks']));
      expect(result.sidecar.version).toBe(1);
      expect(result.sidecar.state.tasks['task_1']?.title).toBe('through the sidecar');
    });

    it('bundles the client path (core + client + ws) for browsers: no Node-only code, size measured', async () => {
      const measure = async (label: string, contents: string) => {
        const result = await build({
          stdin: { contents, resolveDir: project.dir, sourcefile: `${label}.js`, loader: 'js' },
          bundle: true,
          write: false,
          minify: true,
          platform: 'browser',
          format: 'esm',
          target: 'es2022',
          metafile: true,
          logLevel: 'silent',
        });
        const code = result.outputFiles[0]!.contents;
        return {
          label,
          code: Buffer.from(code).toString('utf8'),
          metafile: result.metafile,
          minified: code.byteLength,
          gzipped: gzipSync(code, { level: 9 }).byteLength,
        };
      };
      const everything = await measure('everything', `export * from '@lockstep/core'; export * from '@lockstep/client'; export * from '@lockstep/ws';`);
      const app = await measure(
        'app',
        `import { createClient } from '@lockstep/client'; import { builtInDomains } from '@lockstep/core'; import { webSocketConnector } from '@lockstep/ws';
         export const start = (url) => createClient({ connect: webSocketConnector(url) }); export { builtInDomains };`,
      );
      const kB = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;
      console.log(
        [
          '[publishedPackages.test] browser bundle of the client path (esbuild, minified; gzip -9):',
          ...[everything, app].map(({ label, minified, gzipped }) => `  ${label.padEnd(10)} ${kB(minified).padStart(9)} min  ${kB(gzipped).padStart(8)} gzip`),
          `  by package (everything, minified): ${Object.entries(bytesByPackage(everything.metafile))
            .filter(([, bytes]) => bytes > 0)
            .sort(([, a], [, b]) => b - a)
            .map(([name, bytes]) => `${name} ${kB(bytes)}`)
            .join(', ')}`,
        ].join('\n'),
      );
      for (const { metafile, code } of [everything, app]) {
        const inputs = Object.keys(metafile.inputs);
        expect(
          inputs.filter((input) => input.startsWith('node:') || /node_modules\/(?:ws|@lockstep\/server)\/|@lockstep\/ws\/dist\/server\//.test(input)),
        ).toEqual([]);
        expect(inputs.some((input) => input.endsWith('node_modules/isomorphic-ws/browser.js'))).toBe(true);
        expect(code).not.toMatch(/(?:from|import|require)\s*\(?\s*["']node:/);
        expect(code).not.toMatch(
          /(?:from|import|require)\s*\(?\s*["'](?:crypto|http|https|net|tls|stream|events|zlib|buffer|url|fs|os|path|child_process)["']/,
        );
      }
      expect(everything.gzipped).toBeLessThan(CLIENT_PATH_GZIP_CEILING);
      expect(app.gzipped).toBeLessThanOrEqual(everything.gzipped);
    });

    it.skipIf(skipBrowser)('runs a React page bundled from the tarballs in headless Chromium against the installed hub', async () => {
      requireChromium();

      const bundled = await build({
        entryPoints: [join(project.dir, 'browser.tsx')],
        absWorkingDir: project.dir,
        bundle: true,
        write: false,
        minify: true,
        platform: 'browser',
        format: 'esm',
        target: 'es2022',
        jsx: 'automatic',
        metafile: true,
        logLevel: 'silent',
      });
      expect(Object.keys(bundled.metafile.inputs).filter((input) => input.startsWith('node:') || /node_modules\/ws\//.test(input))).toEqual([]);
      const pages = await pageServer(bundled.outputFiles[0]!.text);
      // The page is served from another origin: the hub lets it in only when told to.
      const hub = await startHubBin(project.dir, ['--allowed-origin', pageUrl(pages).replace(/\/$/, '')]);
      onTestFinished(async () => void (await hub.stop()));
      expect(lastJsonLine(await runNode(project.dir, 'tasks.mjs', [hub.url, 'browser-smoke', 'from node']))).toEqual(['from node']);
      const browser = await launchChromium();
      onTestFinished(async () => {
        await browser.close();
        await new Promise<void>((resolve) => pages.close(() => resolve()));
      });
      const page = await browser.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (error) => pageErrors.push(error.message));
      await page.goto(`${pageUrl(pages)}?hub=${encodeURIComponent(hub.url)}&token=${SERVE_TOKEN}`);
      await page.waitForFunction(() => document.querySelector('#titles')?.textContent === 'from node');
      await page.click('#add');
      await page.waitForFunction(
        () => document.querySelectorAll('#titles li').length === 2 && document.querySelector('#status')?.textContent === 'online · 0 pending',
      );
      expect(await page.locator('#titles li').allTextContents()).toEqual(['from node', 'from the browser']);
      // The hub has the page's command.
      expect(lastJsonLine(await runNode(project.dir, 'tasks.mjs', [hub.url, 'browser-smoke']))).toEqual(['from node', 'from the browser']);
      expect(pageErrors).toEqual([]);
    });
  });
});

/** Minified bytes of the output by the package they come from. */
function bytesByPackage(metafile: Metafile): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const output of Object.values(metafile.outputs)) {
    for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
      const name = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input)?.[1] ?? input;
      totals[name] = (totals[name] ?? 0) + bytesInOutput;
    }
  }
  return totals;
}

/** Serves the page and its bundle on a loopback port. */
async function pageServer(code: string): Promise<Server> {
  const html = '<!doctype html><meta charset="utf-8"><title>lockstep smoke</title><div id="root"></div><script type="module" src="/bundle.js"></script>';
  const server = createServer((request, response) => {
    if (request.url === '/bundle.js') response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(code);
    else response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function pageUrl(server: Server): string {
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

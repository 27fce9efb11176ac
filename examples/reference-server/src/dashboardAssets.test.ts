import { randomUUID } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DASHBOARD_ROOT_ID } from './contract.js';
import { FAVICON_PATH, FAVICON_SVG } from './dashboardAssets.js';
import { call, startTestServer } from './testing.js';

/**
 * The page and bundle, built from a small stand-in dashboard (the real one is tested end to end in
 * e2e.test.ts). It lives under this package's node_modules so that esbuild resolves React, xterm and
 * the @lockstep packages from it as it does for src/dashboard.
 */
async function fixtureDir(): Promise<string> {
  const dir = fileURLToPath(new URL(`../node_modules/.tmp/dashboard-fixture-${randomUUID()}/`, import.meta.url));
  await mkdir(dir, { recursive: true });
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const MAIN_TSX = `
import { createRoot } from 'react-dom/client';
import { tasksDomain } from '@lockstep/core';
import { Terminal } from '@xterm/xterm';

function App() {
  return <p className="fixture">{tasksDomain.name}: {typeof Terminal}</p>;
}
createRoot(document.getElementById('${DASHBOARD_ROOT_ID}')!).render(<App />);
`;

describe('the dashboard page and bundle', () => {
  it('answers 503 until main.tsx exists, shows a build error, then serves the built page', async () => {
    const dir = await fixtureDir();
    const server = await startTestServer({ terminals: false, dashboard: { sourceDir: dir } });

    const missing = await call(server.url, 'GET', '/');
    expect(missing.status).toBe(503);
    expect(missing.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(missing.text).toContain('Dashboard not built');
    expect(missing.text).toContain(join(dir, 'main.tsx'));
    expect((await call(server.url, 'GET', '/assets/dashboard.js')).status).toBe(503);

    await writeFile(join(dir, 'main.tsx'), 'export const broken = <div>;\n');
    const failed = await call(server.url, 'GET', '/');
    expect(failed.status).toBe(500);
    expect(failed.text).toContain('Dashboard build failed');
    expect(failed.text).toMatch(/main\.tsx:\d+:\d+: Unexpected end of file/);

    await writeFile(join(dir, 'main.tsx'), MAIN_TSX);
    await writeFile(join(dir, 'styles.css'), '.fixture { color: rebeccapurple }\n');
    const page = await call(server.url, 'GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.text).toContain(`<div id="${DASHBOARD_ROOT_ID}"></div>`);
    const script = /<script type="module" src="(\/assets\/dashboard\.js\?v=[\w-]+)"><\/script>/.exec(page.text)?.[1];
    const sheet = /<link rel="stylesheet" href="(\/assets\/dashboard\.css\?v=[\w-]+)">/.exec(page.text)?.[1];
    expect(script).toBeDefined();
    expect(sheet).toBeDefined();

    // The bundle: minified for the browser, from the sources (lockstep-source), compressed.
    const js = await call(server.url, 'GET', script!, { headers: { 'Accept-Encoding': 'gzip, br' } });
    expect(js.status).toBe(200);
    expect(js.headers).toMatchObject({
      'content-type': 'text/javascript; charset=utf-8',
      'content-encoding': 'br',
      'cache-control': 'public, max-age=31536000, immutable',
    });
    const code = brotliDecompressSync(js.body).toString('utf8');
    expect(code).toContain('"tasks"');
    expect(code).not.toContain('process.env.NODE_ENV');
    expect(code.length / code.split('\n').length).toBeGreaterThan(1000); // minified: long lines

    const css = await call(server.url, 'GET', sheet!, { headers: { 'Accept-Encoding': 'gzip' } });
    expect(css.headers).toMatchObject({ 'content-type': 'text/css; charset=utf-8', 'content-encoding': 'gzip' });
    const styles = gunzipSync(css.body).toString('utf8');
    expect(styles).toContain('.xterm'); // @xterm/xterm/css/xterm.css
    expect(styles).toMatch(/\.fixture\{color:(#639|rebeccapurple)\}/);
    expect(styles.indexOf('.xterm')).toBeLessThan(styles.indexOf('.fixture'));

    // Revalidation by ETag; an unversioned URL is not cached for good.
    const plain = await call(server.url, 'GET', '/assets/dashboard.js');
    expect(plain.headers['cache-control']).toBe('no-cache');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect((await call(server.url, 'GET', '/assets/dashboard.js', { headers: { 'If-None-Match': plain.headers['etag'] as string } })).status).toBe(304);
    expect((await call(server.url, 'HEAD', '/')).status).toBe(200);
    expect((await call(server.url, 'POST', '/')).status).toBe(405);
    expect((await call(server.url, 'GET', '/elsewhere')).status).toBe(404);
  });

  it('serves the icon the page links, at /favicon.svg and /favicon.ico, even before the dashboard is built', async () => {
    const dir = await fixtureDir();
    const server = await startTestServer({ terminals: false, dashboard: { sourceDir: dir } });
    expect((await call(server.url, 'GET', '/')).status).toBe(503); // no main.tsx: nothing built

    for (const path of [FAVICON_PATH, '/favicon.ico']) {
      const icon = await call(server.url, 'GET', path);
      expect(icon.status, path).toBe(200);
      expect(icon.headers['content-type']).toBe('image/svg+xml');
      expect(icon.text).toBe(FAVICON_SVG);
      expect(icon.text).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect((await call(server.url, 'GET', path, { headers: { 'If-None-Match': icon.headers['etag'] as string } })).status).toBe(304);
    }
    expect((await call(server.url, 'POST', '/favicon.ico')).status).toBe(405);

    await writeFile(join(dir, 'main.tsx'), MAIN_TSX);
    const page = await call(server.url, 'GET', '/');
    expect(page.text).toContain(`<link rel="icon" href="${FAVICON_PATH}" type="image/svg+xml">`);
  });
});

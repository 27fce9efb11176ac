import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlibConstants, gzip } from 'node:zlib';
import { DASHBOARD_ROOT_ID, DASHBOARD_SCRIPT_PATH, DASHBOARD_STYLE_PATH } from './contract.js';

const gzipAsync = promisify(gzip);
const brotliAsync = promisify(brotliCompress);

/** One built file, with its compressed forms and validator. */
interface Asset {
  body: Buffer;
  gzip: Buffer;
  br: Buffer;
  etag: string;
  contentType: string;
}

export type DashboardBuild =
  | { kind: 'ready'; html: Asset; js: Asset; css: Asset; hash: string; ms: number }
  /** `src/dashboard/main.tsx` does not exist (yet). */
  | { kind: 'missing'; entry: string }
  | { kind: 'failed'; message: string };

export interface DashboardAssetsOptions {
  /** Holds `main.tsx` and, optionally, `styles.css`. */
  sourceDir: string;
  log(line: string): void;
}

const IMMUTABLE = 'public, max-age=31536000, immutable';

/** Where the icon is served: the page links the SVG; browsers and tools that ask for `/favicon.ico` get the same. */
export const FAVICON_PATH = '/favicon.svg';
export const FAVICON_PATHS: ReadonlySet<string> = new Set([FAVICON_PATH, '/favicon.ico']);

/** Three bars in step, on the dashboard's accent blue. */
export const FAVICON_SVG =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#2f6fde"/>' +
  '<path d="M9 10.5h14M9 16h14M9 21.5h14" stroke="#fff" stroke-width="3" stroke-linecap="round"/></svg>\n';

/**
 * The dashboard's page and bundle, built with esbuild's JS API on first use (or `build()` at start)
 * and kept in memory: minified for the browser, compressed once (gzip and brotli), served with ETags,
 * and cached for a year when requested with their content hash (`?v=<hash>`, as the page does). A
 * missing entry point answers a 503 page and is looked for again on the next request; so is a build
 * that failed.
 */
export class DashboardAssets {
  readonly #options: DashboardAssetsOptions;
  #build: Promise<DashboardBuild> | undefined;
  #favicon: Promise<Asset> | undefined;

  constructor(options: DashboardAssetsOptions) {
    this.#options = options;
  }

  /** Builds once; a missing entry or a failure is not kept, so the next call tries again. */
  build(): Promise<DashboardBuild> {
    this.#build ??= this.#run().then((result) => {
      if (result.kind !== 'ready') this.#build = undefined;
      return result;
    });
    return this.#build;
  }

  /** Serves `/`, `/index.html`, the assets and the icon; false for any other path. */
  async handle(request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> {
    const which =
      pathname === '/' || pathname === '/index.html'
        ? 'html'
        : pathname === DASHBOARD_SCRIPT_PATH
          ? 'js'
          : pathname === DASHBOARD_STYLE_PATH
            ? 'css'
            : undefined;
    const icon = FAVICON_PATHS.has(pathname);
    if (which === undefined && !icon) return false;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' });
      response.end('GET or HEAD\n');
      return true;
    }
    // The icon needs no build: it is there even while the dashboard is not.
    if (which === undefined) {
      this.#favicon ??= asset(Buffer.from(FAVICON_SVG), 'image/svg+xml');
      send(request, response, await this.#favicon, 'public, max-age=86400');
      return true;
    }
    const build = await this.build();
    if (build.kind !== 'ready') {
      const status = build.kind === 'missing' ? 503 : 500;
      const page = build.kind === 'missing' ? missingPage(build.entry) : failedPage(build.message);
      response.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Retry-After': '5' });
      response.end(request.method === 'HEAD' ? undefined : page);
      return true;
    }
    const versioned = new URL(request.url ?? '/', 'http://localhost').searchParams.get('v') === build.hash;
    send(request, response, build[which], which !== 'html' && versioned ? IMMUTABLE : 'no-cache');
    return true;
  }

  async #run(): Promise<DashboardBuild> {
    const entry = join(this.#options.sourceDir, 'main.tsx');
    if (!existsSync(entry)) return { kind: 'missing', entry };
    const started = performance.now();
    try {
      // Loaded here: a server that never serves the page never loads esbuild.
      const esbuild = await import('esbuild');
      const styles = join(this.#options.sourceDir, 'styles.css');
      const common = { bundle: true, minify: true, write: false, logLevel: 'silent', platform: 'browser', target: 'es2022', legalComments: 'none' } as const;
      const [script, sheet] = await Promise.all([
        esbuild.build({
          ...common,
          entryPoints: [entry],
          outdir: 'out',
          format: 'esm',
          jsx: 'automatic',
          conditions: ['lockstep-source', 'module'],
          define: { 'process.env.NODE_ENV': '"production"' },
        }),
        esbuild.build({
          ...common,
          stdin: {
            contents: [`@import "@xterm/xterm/css/xterm.css";`, existsSync(styles) ? `@import ${JSON.stringify(styles)};` : ''].join('\n'),
            resolveDir: this.#options.sourceDir,
            loader: 'css',
          },
          outfile: 'out/dashboard.css',
        }),
      ]);
      const js = script.outputFiles.find((file) => file.path.endsWith('.js'))!.contents;
      // CSS imported from the script (if any) comes after xterm's and styles.css.
      const css = Buffer.concat([...sheet.outputFiles, ...script.outputFiles.filter((file) => file.path.endsWith('.css'))].map((file) => file.contents));
      const hash = createHash('sha256').update(js).update(css).digest('base64url').slice(0, 16);
      const [jsAsset, cssAsset, htmlAsset] = await Promise.all([
        asset(Buffer.from(js), 'text/javascript; charset=utf-8'),
        asset(css, 'text/css; charset=utf-8'),
        asset(Buffer.from(pageHtml(hash)), 'text/html; charset=utf-8'),
      ]);
      const ms = Math.round(performance.now() - started);
      this.#options.log(`dashboard built in ${ms} ms: ${kib(js.length)} JS (${kib(jsAsset.br.length)} brotli), ${kib(css.length)} CSS`);
      return { kind: 'ready', html: htmlAsset, js: jsAsset, css: cssAsset, hash, ms };
    } catch (error) {
      const message = buildErrorMessage(error);
      this.#options.log(`dashboard build failed: ${message}`);
      return { kind: 'failed', message };
    }
  }
}

async function asset(body: Buffer, contentType: string): Promise<Asset> {
  const [gzipped, br] = await Promise.all([
    gzipAsync(body, { level: 9 }),
    brotliAsync(body, { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 9, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length } }),
  ]);
  return { body, gzip: gzipped, br, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`, contentType };
}

function send(request: IncomingMessage, response: ServerResponse, file: Asset, cacheControl: string): void {
  const headers: Record<string, string> = { 'Content-Type': file.contentType, 'Cache-Control': cacheControl, ETag: file.etag, Vary: 'Accept-Encoding' };
  if (request.headers['if-none-match'] === file.etag) {
    response.writeHead(304, headers);
    response.end();
    return;
  }
  const accepted = request.headers['accept-encoding'] ?? '';
  let body = file.body;
  if (/\bbr\b/.test(accepted)) {
    body = file.br;
    headers['Content-Encoding'] = 'br';
  } else if (/\bgzip\b/.test(accepted)) {
    body = file.gzip;
    headers['Content-Encoding'] = 'gzip';
  }
  headers['Content-Length'] = String(body.length);
  response.writeHead(200, headers);
  response.end(request.method === 'HEAD' ? undefined : body);
}

function pageHtml(hash: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lockstep</title>
<link rel="icon" href="${FAVICON_PATH}" type="image/svg+xml">
<link rel="stylesheet" href="${DASHBOARD_STYLE_PATH}?v=${hash}">
<script type="module" src="${DASHBOARD_SCRIPT_PATH}?v=${hash}"></script>
</head>
<body>
<div id="${DASHBOARD_ROOT_ID}"></div>
<noscript>The Lockstep dashboard needs JavaScript. The REST API is at <a href="/api">/api</a>.</noscript>
</body>
</html>
`;
}

function missingPage(entry: string): string {
  return placeholder(
    'Dashboard not built',
    `<p>The dashboard's entry point <code>${escapeHtml(entry)}</code> does not exist yet, so there is nothing to serve.
The server itself is up: the WebSocket endpoint and the REST API at <a href="/api">/api</a> work.</p>
<p>This page is tried again on every request.</p>`,
  );
}

function failedPage(message: string): string {
  return placeholder('Dashboard build failed', `<p>esbuild could not build the dashboard:</p><pre>${escapeHtml(message)}</pre><p>Fix it and reload.</p>`);
}

function placeholder(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} · Lockstep</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:42rem;margin:4rem auto;padding:0 1rem;color:#222}code,pre{font:13px ui-monospace,monospace}pre{white-space:pre-wrap;background:#f4f4f4;padding:1rem}</style>
</head><body><h1>${title}</h1>${body}</body></html>
`;
}

function buildErrorMessage(error: unknown): string {
  const errors = (error as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors;
  if (Array.isArray(errors) && errors.length > 0) {
    return errors.map(({ text, location }) => (location ? `${location.file}:${location.line}:${location.column}: ${text}` : text)).join('\n');
  }
  return error instanceof Error ? error.message : String(error);
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

function kib(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KiB`;
}

import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { readJsonBody } from './http/body.js';
import type { Access } from './http/access.js';
import { PAGE_CSP } from './http/access.js';
import { HttpError } from './http/httpError.js';
import { sendJson } from './http/reply.js';

/** The login page: `/login#<token>` signs the browser in and goes on to the dashboard. */
export const LOGIN_PATH = '/login';
const LOGIN_SCRIPT_PATH = '/login.js';
const MAX_LOGIN_BODY_BYTES = 16 * 1024;

const loginBodySchema = z.strictObject({ token: z.string().min(1).max(8192) });

/**
 * The login URL printed at start is `http://host:port/login#<token>`. The token is in the fragment,
 * which a browser never sends: it reaches no server log and no proxy. The page's script takes it
 * out of the address bar and the history entry at once (`history.replaceState`), posts it as JSON,
 * and the answer sets an `HttpOnly; SameSite=Strict` cookie; then the dashboard opens at `/`.
 * Without a fragment, the page asks for the token.
 */
export function loginUrl(baseUrl: string, token: string): string {
  return `${baseUrl}${LOGIN_PATH}#${encodeURIComponent(token)}`;
}

/**
 * The login page for a person who asked for `target` (a path of this server, with its query) without
 * the cookie: `/login?next=<target>`, to which the page returns once signed in (`/` is left out).
 */
export function loginPathFor(target: string): string {
  return target === '/' || !OWN_PATH.test(target) ? LOGIN_PATH : `${LOGIN_PATH}?next=${encodeURIComponent(target)}`;
}

/** A path on this server (`/…`), never another site (`//evil.example`, `/\\evil.example`). */
const OWN_PATH = /^\/(?![/\\])\S*$/;

/** Serves `/login` and its script; false for any other path. */
export async function handleLogin(request: IncomingMessage, response: ServerResponse, pathname: string, access: Access): Promise<boolean> {
  if (pathname === LOGIN_SCRIPT_PATH && (request.method === 'GET' || request.method === 'HEAD')) {
    response.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache' });
    response.end(request.method === 'HEAD' ? undefined : LOGIN_SCRIPT);
    return true;
  }
  if (pathname !== LOGIN_PATH) return false;
  if (request.method === 'GET' || request.method === 'HEAD') {
    response.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Security-Policy': PAGE_CSP });
    response.end(request.method === 'HEAD' ? undefined : LOGIN_PAGE);
    return true;
  }
  if (request.method !== 'POST') throw HttpError.of(405, 'METHOD_NOT_FOUND', `${LOGIN_PATH} answers GET and POST`, undefined, { Allow: 'GET, HEAD, POST' });
  // JSON only: a form or a no-cors fetch of another site cannot send it without a preflight.
  const contentType = request.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(contentType)) {
    throw HttpError.of(415, 'INVALID_REQUEST', 'send the token as JSON: {"token": "…"} with Content-Type: application/json');
  }
  const parsed = loginBodySchema.safeParse(await readJsonBody(request, MAX_LOGIN_BODY_BYTES));
  if (!parsed.success) throw HttpError.of(400, 'INVALID_PARAMS', 'expected {"token": "…"}', { issues: parsed.error.issues });
  await access.authenticateToken(parsed.data.token, request);
  sendJson(request, response, { status: 204, body: undefined, headers: { 'Set-Cookie': access.loginCookie(parsed.data.token), 'Cache-Control': 'no-store' } });
  return true;
}

const LOGIN_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · Lockstep</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}input{font:inherit;width:100%;box-sizing:border-box;padding:.4rem}button{font:inherit;margin-top:.6rem;padding:.3rem 1rem}#error{color:#b00020}</style>
<script type="module" src="${LOGIN_SCRIPT_PATH}"></script>
</head>
<body>
<h1>Lockstep</h1>
<p>This server needs its token. Open the login URL the server printed when it started, or paste the token here
(from <code>LOCKSTEP_TOKEN</code>, or the token file it named).</p>
<form id="login"><label>Token <input id="token" type="password" autocomplete="off" required></label><button type="submit">Sign in</button></form>
<p id="error" role="alert"></p>
</body>
</html>
`;

const LOGIN_SCRIPT = `const form = document.getElementById('login');
const error = document.getElementById('error');
async function signIn(token) {
  error.textContent = '';
  const answer = await fetch('${LOGIN_PATH}', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token }), credentials: 'same-origin' });
  if (answer.status === 204) { location.replace(next); return; }
  const body = await answer.json().catch(() => undefined);
  error.textContent = body?.error?.message ?? 'the server refused the token (' + answer.status + ')';
}
// Where to go once signed in: a path of this server only (the server sends ?next= for the page asked for).
const asked = new URLSearchParams(location.search).get('next') ?? '/';
const next = ${String(OWN_PATH)}.test(asked) ? asked : '/';
const fragment = decodeURIComponent(location.hash.slice(1));
if (fragment) {
  history.replaceState(null, '', location.pathname + location.search);
  void signIn(fragment);
}
form.addEventListener('submit', (event) => {
  event.preventDefault();
  void signIn(document.getElementById('token').value.trim());
});
`;

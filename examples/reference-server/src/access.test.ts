import { request as httpRequest } from 'node:http';
import type { Identity } from '@lockstep/server';
import { upgradeStatus } from '@lockstep/tests/upgradeStatus';
import { describe, expect, it } from 'vitest';
import { LockstepError } from '@lockstep/core';
import { RawPeer, SseReader, TEST_TOKEN, call, startTestServer, until, type HttpAnswer } from './testing.js';

/**
 * Who may use the reference server, over real HTTP: the token on every entry (REST, SSE, the
 * WebSocket upgrade, the dashboard), the login cookie and what it may not do alone (CSRF), the Host
 * and Origin checks, the security headers, and an application's own `authenticate`/`authorize` hooks
 * applying to REST and SSE as they do to the WebSocket.
 */

const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });

function expectRefused(answer: HttpAnswer, status: number, code: string): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json?.error?.code, answer.text).toBe(code);
}

/** Signs in like the login page does; answers the `Cookie` header to send. */
async function signIn(url: string, token: string): Promise<string> {
  const answer = await call(url, 'POST', '/login', { body: { token }, anonymous: true, headers: { Origin: url } });
  expect(answer.status, answer.text).toBe(204);
  const setCookie = answer.headers['set-cookie']![0]!;
  expect(setCookie).toMatch(/; HttpOnly/);
  expect(setCookie).toMatch(/; SameSite=Strict/);
  expect(setCookie).toMatch(new RegExp(`^lockstep-token-${new URL(url).port}=`));
  return setCookie.split(';')[0]!;
}

describe('the token on every entry', () => {
  it('refuses REST, SSE, the WebSocket and the dashboard without it, and serves them with it', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory' });
    const anonymous = { anonymous: true };

    const refused = await call(server.url, 'GET', '/api/tasks', anonymous);
    expectRefused(refused, 401, 'UNAUTHORIZED');
    expect(refused.headers['www-authenticate']).toBe('Bearer');
    expectRefused(await call(server.url, 'POST', '/api/tasks', { ...anonymous, body: { title: 'x' } }), 401, 'UNAUTHORIZED');
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: bearer('not-the-token-0123456789') }), 401, 'UNAUTHORIZED');
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: { Authorization: 'Basic dXNlcjpwYXNz' } }), 401, 'UNAUTHORIZED');

    const sse = new SseReader(server.url, '/api/streams/tasks/default', {}, anonymous);
    await sse.opened();
    expect(sse.status).toBe(401);
    expect(server.eventStreams()).toHaveLength(0);

    expect(await upgradeStatus(server.wsUrl, {})).toBe(401);
    expect(await upgradeStatus(server.wsUrl, bearer('not-the-token-0123456789'))).toBe(401);
    expect(await upgradeStatus(server.wsUrl, bearer(TEST_TOKEN))).toBe(101);
    const entry = `lockstep.bearer.${Buffer.from(TEST_TOKEN).toString('base64url')}`;
    expect(await upgradeStatus(server.wsUrl, {}, ['lockstep.v1.json', entry])).toBe(101);

    const page = await call(server.url, 'GET', '/', anonymous);
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe('/login');
    // A link to a page of the dashboard comes back to it after the login; never to another site.
    expect((await call(server.url, 'GET', '/?project=proj_1', anonymous)).headers.location).toBe(`/login?next=${encodeURIComponent('/?project=proj_1')}`);
    expect((await call(server.url, 'GET', '//evil.example/', anonymous)).headers.location).toBe('/login');
    // The icon is public (the login page shows it); nothing else is.
    expect((await call(server.url, 'GET', '/favicon.ico', anonymous)).status).toBe(200);
    expect((await call(server.url, 'GET', '/assets/dashboard.js', anonymous)).status).toBe(303);

    // With it: every entry answers, and nothing was changed by the refused attempts.
    expect((await call(server.url, 'GET', '/api/tasks')).json.tasks).toEqual([]);
    expect((await server.hub.read('tasks/default')).version).toBe(0);
  });

  it('throttles an address that guesses, without checking its tokens, and serves others meanwhile', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory', authFailureLimit: { failures: 3, windowMs: 60_000 } });
    for (let i = 0; i < 3; i++)
      expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: bearer(`guess-${i}-0123456789abcd`) }), 401, 'UNAUTHORIZED');
    const limited = await call(server.url, 'GET', '/api/tasks', { headers: bearer(TEST_TOKEN) });
    expectRefused(limited, 429, 'RATE_LIMITED');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // Another address still gets in with the token.
    const other = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/api/tasks`, { localAddress: '127.0.0.2', headers: { Connection: 'close', ...bearer(TEST_TOKEN) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(other).toBe(200);
  });
});

describe('the login cookie', () => {
  it('is set by /login for the right token only, and opens the dashboard and the API', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory' });
    const login = await call(server.url, 'GET', '/login', { anonymous: true });
    expect(login.status).toBe(200);
    expect(login.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(login.headers['content-security-policy']).toContain("script-src 'self'");
    expect(login.text).not.toContain(TEST_TOKEN);

    expectRefused(await call(server.url, 'POST', '/login', { body: { token: 'wrong-token-0123456789' }, anonymous: true }), 401, 'UNAUTHORIZED');
    expect(
      (
        await call(server.url, 'POST', '/login', {
          raw: `token=${TEST_TOKEN}`,
          anonymous: true,
          headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        })
      ).status,
    ).toBe(415);

    const cookie = await signIn(server.url, TEST_TOKEN);
    const withCookie = { anonymous: true, headers: { Cookie: cookie } };
    expect((await call(server.url, 'GET', '/api/tasks', withCookie)).status).toBe(200);
    expect((await call(server.url, 'GET', '/', withCookie)).status).not.toBe(303);
    expect(await upgradeStatus(server.wsUrl, { Cookie: cookie, Origin: server.url })).toBe(101);
    // The cookie of another port's server is not this one's.
    expect(
      (await call(server.url, 'GET', '/api/tasks', { anonymous: true, headers: { Cookie: cookie.replace(/^lockstep-token-\d+/, 'lockstep-token-1') } })).status,
    ).toBe(401);
  });

  it('cannot change anything alone: a change needs the own Origin and a JSON type or X-Lockstep-Request, even without a body', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory' });
    const cookie = await signIn(server.url, TEST_TOKEN);
    const post = (headers: Record<string, string>, raw?: string) =>
      call(server.url, 'POST', '/api/tasks', { anonymous: true, headers: { Cookie: cookie, ...headers }, ...(raw !== undefined && { raw }) });

    // A form of another site: no Origin of ours, text/plain, an empty or a JSON-looking body.
    expectRefused(await post({ 'Content-Type': 'text/plain' }, '{"title":"forged"}'), 403, 'FORBIDDEN');
    expectRefused(await post({ 'Content-Type': 'text/plain', Origin: 'http://evil.example' }, '{"title":"forged"}'), 403, 'FORBIDDEN');
    expectRefused(await post({ 'Content-Type': 'text/plain', Origin: server.url }, ''), 403, 'FORBIDDEN');
    expectRefused(await post({ Origin: server.url }), 403, 'FORBIDDEN');
    expectRefused(await post({ 'Content-Type': 'application/json' }, '{"title":"no origin"}'), 403, 'FORBIDDEN');
    expectRefused(
      await call(server.url, 'DELETE', '/api/orchestration/workspaces/w', { anonymous: true, headers: { Cookie: cookie, Origin: server.url } }),
      403,
      'FORBIDDEN',
    );
    expect((await server.hub.read('tasks/default')).version).toBe(0);

    // The dashboard's own requests pass.
    expect((await post({ 'Content-Type': 'application/json', Origin: server.url }, '{"title":"mine"}')).status).toBe(201);
    expect(
      (
        await call(server.url, 'DELETE', '/api/orchestration/workspaces/w', {
          anonymous: true,
          headers: { Cookie: cookie, Origin: server.url, 'X-Lockstep-Request': '1' },
        })
      ).status,
    ).not.toBe(403);
    expect((await server.hub.read('tasks/default')).version).toBe(1);
  });
});

describe('other sites', () => {
  it('refuses foreign Host headers and Origins everywhere, with the token, and sends the security headers', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory' });
    const port = new URL(server.url).port;
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: { Host: `evil.example:${port}` } }), 403, 'FORBIDDEN');
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: { Origin: 'http://evil.example' } }), 403, 'FORBIDDEN');
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: { Origin: 'null' } }), 403, 'FORBIDDEN');
    expectRefused(await call(server.url, 'GET', '/login', { anonymous: true, headers: { Host: `evil.example:${port}` } }), 403, 'FORBIDDEN');
    expect(await upgradeStatus(server.wsUrl, { ...bearer(TEST_TOKEN), Host: `evil.example:${port}` })).toBe(403);
    expect(await upgradeStatus(server.wsUrl, { ...bearer(TEST_TOKEN), Origin: `http://127.0.0.1:${Number(port) + 1}` })).toBe(403);

    for (const answer of [await call(server.url, 'GET', '/api/tasks'), await call(server.url, 'GET', '/api/tasks', { anonymous: true })]) {
      expect(answer.headers['x-frame-options']).toBe('DENY');
      expect(answer.headers['x-content-type-options']).toBe('nosniff');
      expect(answer.headers['referrer-policy']).toBe('no-referrer');
      expect(answer.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    }
  });

  it('on every interface still answers only its own names, and refuses to run without a token there', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory', host: '0.0.0.0', allowedHosts: ['hub.lan:8080'] });
    const port = new URL(server.url).port;
    expect(server.url).toBe(`http://127.0.0.1:${port}`);
    expect((await call(server.url, 'GET', '/api/tasks')).status).toBe(200);
    expect((await call(server.url, 'GET', '/api/tasks', { headers: { Host: 'hub.lan:8080' } })).status).toBe(200);
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: { Host: `evil.example:${port}` } }), 403, 'FORBIDDEN');
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: { Origin: `http://evil.example:${port}` } }), 403, 'FORBIDDEN');
    expect(await upgradeStatus(server.wsUrl, { ...bearer(TEST_TOKEN), Host: `evil.example:${port}` })).toBe(403);

    await expect(startTestServer({ terminals: false, store: 'memory', host: '0.0.0.0', auth: { insecureNoAuth: true } })).rejects.toThrow(
      /without authentication/,
    );
  });
});

describe('bounds', () => {
  it('caps the event streams one address may hold open', async () => {
    const server = await startTestServer({ terminals: false, store: 'memory', maxEventStreamsPerAddress: 2 });
    const first = new SseReader(server.url, '/api/streams/tasks/default');
    const second = new SseReader(server.url, '/api/streams/tasks/default/events');
    await Promise.all([first.opened(), second.opened()]);
    expect([first.status, second.status]).toEqual([200, 200]);
    const third = await call(server.url, 'GET', '/api/streams/tasks/default', { headers: { Accept: 'text/event-stream' } });
    expectRefused(third, 429, 'RATE_LIMITED');
    expect(server.eventStreams()).toHaveLength(2);
    first.close();
    await until(() => server.eventStreams().length === 1, 'the first stream released');
    const again = new SseReader(server.url, '/api/streams/tasks/default');
    await again.opened();
    expect(again.status).toBe(200);
  });
});

describe("an application's own hooks", () => {
  it('authenticate and authorize decide for REST and SSE exactly as for the WebSocket', async () => {
    const users: Record<string, Identity> = { 'alice-token-0123456789': { id: 'alice' }, 'bob-token-0123456789ab': { id: 'bob' } };
    const server = await startTestServer({
      terminals: false,
      store: 'memory',
      hubOptions: {
        authenticate: ({ token }) => (token === undefined ? undefined : users[token]),
        // Alice may read and write the board; Bob may only read it.
        authorize: (identity, stream, action) => stream === 'tasks/default' && (identity?.id === 'alice' || action === 'read'),
      },
    });
    expect(server.token).toBeUndefined();
    const alice = { headers: bearer('alice-token-0123456789') };
    const bob = { headers: bearer('bob-token-0123456789ab') };

    expect((await call(server.url, 'POST', '/api/tasks', { ...alice, body: { title: 'by alice' } })).status).toBe(201);
    expectRefused(await call(server.url, 'POST', '/api/tasks', { ...bob, body: { title: 'by bob' } }), 403, 'FORBIDDEN');
    expect((await call(server.url, 'GET', '/api/tasks', bob)).json.tasks).toHaveLength(1);
    expectRefused(await call(server.url, 'GET', '/api/orchestration', bob), 403, 'FORBIDDEN');
    expectRefused(await call(server.url, 'GET', '/api/streams/focus/default', alice), 403, 'FORBIDDEN');
    expectRefused(await call(server.url, 'GET', '/api/streams/focus/default/events?since=0', alice), 403, 'FORBIDDEN');
    expectRefused(await call(server.url, 'GET', '/api/tasks', { headers: bearer(TEST_TOKEN) }), 401, 'UNAUTHORIZED');

    const forbiddenStream = new SseReader(server.url, '/api/streams/orchestration/default', alice.headers);
    await forbiddenStream.opened();
    expect(forbiddenStream.status).toBe(403);
    const allowedStream = new SseReader(server.url, '/api/streams/tasks/default/events?since=0', bob.headers);
    await allowedStream.opened();
    expect(allowedStream.status).toBe(200);
    await allowedStream.waitFor((reader) => reader.events.length === 1, 'the task event');

    // And over the WebSocket, the same identities.
    const peer = await RawPeer.connect(server.wsUrl, bob.headers);
    await expect(peer.request('command', { id: 'ws-bob-1', stream: 'tasks/default', type: 'task.create', payload: { title: 'x' } })).rejects.toBeInstanceOf(
      LockstepError,
    );
    expect((await server.hub.read('tasks/default')).version).toBe(1);
  });
});

describe('revocation', () => {
  it('a stream the caller may no longer read ends its Server-Sent Events and its WebSocket subscription', async () => {
    let grantedToBob = true;
    const server = await startTestServer({
      terminals: false,
      store: 'memory',
      hubOptions: {
        authenticate: ({ token }) => (token === 'alice-token-0123456789' ? { id: 'alice' } : token === 'bob-token-0123456789ab' ? { id: 'bob' } : undefined),
        authorize: (identity, stream) => stream === 'tasks/default' && (identity?.id === 'alice' || grantedToBob),
      },
    });
    const alice = bearer('alice-token-0123456789');
    const bobSse = new SseReader(server.url, '/api/streams/tasks/default/events?since=0', bearer('bob-token-0123456789ab'));
    const aliceSse = new SseReader(server.url, '/api/streams/tasks/default/events?since=0', alice);
    await Promise.all([bobSse.opened(), aliceSse.opened()]);
    const bobWs = await RawPeer.connect(server.wsUrl, bearer('bob-token-0123456789ab'));
    await bobWs.request('subscribe', { stream: 'tasks/default' });
    expect((await call(server.url, 'POST', '/api/tasks', { headers: alice, body: { title: 'before' } })).status).toBe(201);
    await bobSse.waitFor((reader) => reader.events.length === 1, 'bob to see the first task');

    grantedToBob = false;
    await server.hub.reauthorize((identity) => identity?.id === 'bob');
    await bobSse.waitFor((reader) => reader.ended, "bob's event stream to end");
    await until(() => bobWs.notifications.some((n) => n.method === 'unsubscribed'), 'the unsubscribed notification');
    expect(bobWs.notifications.find((n) => n.method === 'unsubscribed')!.params).toMatchObject({
      stream: 'tasks/default',
      error: { code: expect.any(Number) },
    });

    expect((await call(server.url, 'POST', '/api/tasks', { headers: alice, body: { title: 'after' } })).status).toBe(201);
    await aliceSse.waitFor((reader) => reader.events.length === 2, 'alice to see both tasks');
    expect(bobSse.events).toHaveLength(1);
    expect(
      bobWs.notifications
        .filter((n) => n.method === 'events')
        .flatMap((n) => n.params.events)
        .map((event: { version: number }) => event.version),
    ).not.toContain(2);
    // And bob cannot open it again.
    expectRefused(await call(server.url, 'GET', '/api/streams/tasks/default', { headers: bearer('bob-token-0123456789ab') }), 403, 'FORBIDDEN');
  });
});

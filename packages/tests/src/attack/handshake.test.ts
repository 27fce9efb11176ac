import { ErrorCodes } from '@lockstep/core';
import { HUB_DEFAULTS, type Identity } from '@lockstep/server';
import { WS_SERVER_DEFAULTS } from '@lockstep/ws/server';
import { describe, expect, it } from 'vitest';
import { RawPeer } from '../wsPeer.js';
import { TRANSPORT_KINDS, bystanders, connectWs, expectUnharmed, startWorld, type Peer } from './world.js';

/**
 * Attacks on the way in: foreign origins, bad and expired tokens, clients that never say hello,
 * token guessing, and one address opening connection after connection.
 */

/** Tokens are `ok:<user>:<expiry ms>`; anything else, or an expired one, is refused. */
function checkToken(token: string | undefined): Identity | undefined {
  const match = /^ok:([a-z]+):(\d+)$/.exec(token ?? '');
  if (!match || Number(match[2]) < Date.now()) return undefined;
  return { id: match[1]! };
}
const valid = (user: string) => `ok:${user}:${Date.now() + 60_000}`;
const expired = (user: string) => `ok:${user}:${Date.now() - 1}`;

const refusedUpgrade = (promise: Promise<unknown>, status: number) => expect(promise).rejects.toThrow(`Unexpected server response: ${status}`);

describe('handshake attacks over WebSocket upgrades', () => {
  it('a foreign Origin is refused with 403 before a socket exists; a listed one and none at all are served', async () => {
    const world = await startWorld({ ws: { allowedOrigins: ['https://dashboard.example'] } });
    const others = await bystanders(world);
    const before = await world.targets();
    await refusedUpgrade(connectWs(world.url, 'ws-json', { origin: 'https://evil.example' }), 403);
    await refusedUpgrade(connectWs(world.url, 'ws-msgpack', { origin: 'null' }), 403);
    const listed = await connectWs(world.url, 'ws-json', { origin: 'https://dashboard.example' });
    expect((await listed.call('hello', { protocol: 1 })).result).toMatchObject({ protocol: 1 });
    listed.socket.terminate();
    await expectUnharmed(world, before, others);
  });

  it('a bad, expired or missing bearer token is refused with 401 at the upgrade', async () => {
    const world = await startWorld({ ws: { authenticate: ({ token }) => checkToken(token) } });
    const before = await world.targets();
    const bearer = (token: string) => ({ headers: { Authorization: `Bearer ${token}` } });
    await refusedUpgrade(connectWs(world.url, 'ws-json', bearer('forged')), 401);
    await refusedUpgrade(connectWs(world.url, 'ws-json', bearer(expired('alice'))), 401);
    await refusedUpgrade(connectWs(world.url, 'ws-json'), 401);
    await refusedUpgrade(connectWs(world.url, 'ws-json', { headers: { Authorization: 'Basic YWxpY2U6c2VjcmV0' } }), 401);
    const alice = await connectWs(world.url, 'ws-json', bearer(valid('alice')));
    expect((await alice.call('hello', { protocol: 1 })).result).toMatchObject({ protocol: 1 });
    expect((await alice.call('command', { id: 'alice:1', stream: 'counter/alice', type: 'add', payload: { by: 1 } })).result).toMatchObject({ version: 1 });
    alice.socket.terminate();
    expect(await world.targets()).toEqual(before);
  });

  it('repeated refused tokens from one address are throttled with 429 (default 10 a minute) without asking authenticate; other addresses are not', async () => {
    let calls = 0;
    const world = await startWorld({
      ws: {
        authenticate: ({ token }) => {
          calls++;
          return checkToken(token);
        },
      },
    });
    const bearer = (token: string, localAddress = '127.0.0.1') => ({ headers: { Authorization: `Bearer ${token}` }, localAddress });
    const { failures } = WS_SERVER_DEFAULTS.authFailureLimit;
    for (let i = 0; i < failures; i++) await refusedUpgrade(connectWs(world.url, 'ws-json', bearer(`guess-${i}`)), 401);
    expect(calls).toBe(failures);
    await refusedUpgrade(connectWs(world.url, 'ws-json', bearer('guess-more')), 429);
    // Throttled means not tried: even a good token waits for the window to end.
    await refusedUpgrade(connectWs(world.url, 'ws-json', bearer(valid('alice'))), 429);
    expect(calls).toBe(failures);
    const elsewhere = await connectWs(world.url, 'ws-json', bearer(valid('bob'), '127.0.0.2'));
    expect((await elsewhere.call('hello', { protocol: 1 })).result).toMatchObject({ protocol: 1 });
    elsewhere.socket.terminate();
    expect(calls).toBe(failures + 1);
  });

  it('says when to retry: Retry-After on the 429', async () => {
    const world = await startWorld({ ws: { authenticate: () => undefined, authFailureLimit: { failures: 1, windowMs: 30_000 } } });
    await refusedUpgrade(connectWs(world.url, 'ws-json'), 401);
    const { status, headers } = await rawUpgrade(world.url);
    expect(status).toBe(429);
    expect(Number(headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(headers['retry-after'])).toBeLessThanOrEqual(30);
  });

  it('one address may hold at most maxConnectionsPerAddress connections (default 256); more get 429, others and freed slots are served', async () => {
    const world = await startWorld({ hub: { helloTimeoutMs: 60_000 } });
    const others = await bystanders(world); // one of them holds a WebSocket from 127.0.0.1
    const before = await world.targets();
    const limit = WS_SERVER_DEFAULTS.maxConnectionsPerAddress;
    expect(limit).toBe(256);
    const held: RawPeer[] = [];
    for (let i = 1; i < limit; i++) held.push(await connectWs(world.url, 'ws-json'));
    await refusedUpgrade(connectWs(world.url, 'ws-json'), 429);
    await refusedUpgrade(connectWs(world.url, 'ws-msgpack'), 429);
    const elsewhere = await connectWs(world.url, 'ws-json', { localAddress: '127.0.0.2' });
    expect((await elsewhere.call('ping', {})).result).toEqual({ time: expect.any(Number) });
    // A closed connection frees its slot.
    await held.pop()!.close();
    const again = await connectWs(world.url, 'ws-json');
    expect((await again.call('hello', { protocol: 1 })).result).toMatchObject({ protocol: 1 });
    for (const peer of [...held, elsewhere, again]) peer.socket.terminate();
    await expectUnharmed(world, before, others);
  });

  it('maxConnectionsPerAddress can be lowered', async () => {
    const world = await startWorld({ ws: { maxConnectionsPerAddress: 2 } });
    const first = await connectWs(world.url, 'ws-json');
    const second = await connectWs(world.url, 'ws-json');
    await refusedUpgrade(connectWs(world.url, 'ws-json'), 429);
    first.socket.terminate();
    second.socket.terminate();
  });
});

describe.each(TRANSPORT_KINDS)('handshake attacks over %s', (kind) => {
  it('a bad, expired or missing hello token is UNAUTHORIZED and leaves the connection unauthenticated', async () => {
    const world = await startWorld({ hub: { authenticate: ({ token }) => checkToken(token) } });
    const before = await world.targets();
    const attacker = await world.connect(kind);
    for (const token of ['forged', expired('alice'), undefined]) {
      const answer = await attacker.call('hello', token === undefined ? { protocol: 1 } : { protocol: 1, token });
      expect(answer.error.code).toBe(ErrorCodes.UNAUTHORIZED);
    }
    expect((await attacker.call('subscribe', { stream: 'counter/x' })).error.code).toBe(ErrorCodes.HANDSHAKE_REQUIRED);
    expect((await attacker.call('command', { id: 'x:1', stream: 'counter/x', type: 'add', payload: { by: 1 } })).error.code).toBe(
      ErrorCodes.HANDSHAKE_REQUIRED,
    );
    expect((await attacker.call('hello', { protocol: 1, token: valid('alice') })).result).toMatchObject({ protocol: 1 });
    expect(await world.targets()).toEqual(before);
  });

  it('token guessing in hello is throttled: past the limit, RATE_LIMITED without asking authenticate, then closed', async () => {
    let calls = 0;
    const world = await startWorld({
      hub: {
        authenticate: ({ token }) => {
          calls++;
          return checkToken(token);
        },
        authFailureLimit: { failures: 3, windowMs: 60_000 },
      },
    });
    const attacker = await world.connect(kind);
    for (let i = 0; i < 3; i++) expect((await attacker.call('hello', { protocol: 1, token: `guess-${i}` })).error.code).toBe(ErrorCodes.UNAUTHORIZED);
    const throttled = await attacker.call('hello', { protocol: 1, token: valid('alice') });
    expect(throttled.error).toMatchObject({ code: ErrorCodes.RATE_LIMITED, data: { retryAfterMs: expect.any(Number) } });
    expect(throttled.error.data.retryAfterMs).toBeGreaterThan(0);
    await attacker.closed;
    expect(calls).toBe(3);
    if (kind === 'stdio') {
      // No address to go by: the budget was the connection's.
      const fresh = await world.connect(kind);
      expect((await fresh.call('hello', { protocol: 1, token: valid('alice') })).result).toMatchObject({ protocol: 1 });
    } else {
      // The budget is the address's: a new connection from it is throttled too, another address is not.
      const again = await world.connect(kind);
      expect((await again.call('hello', { protocol: 1, token: valid('alice') })).error.code).toBe(ErrorCodes.RATE_LIMITED);
      const elsewhere = await world.connect(kind, { wsOptions: { localAddress: '127.0.0.2' } });
      expect((await elsewhere.call('hello', { protocol: 1, token: valid('alice') })).result).toMatchObject({ protocol: 1 });
    }
    expect(HUB_DEFAULTS.authFailureLimit).toEqual({ failures: 10, windowMs: 60_000 });
  });

  it.each([
    ['says nothing', (_peer: Peer) => {}],
    ['only pings (pings need no hello)', (peer: Peer) => void pingForever(peer)],
    ['says hello with a token whose check never finishes', (peer: Peer) => void peer.request('hello', { protocol: 1, token: 'hang' })],
  ])('a client that %s is closed after helloTimeoutMs; others are served', async (_what, behave) => {
    const world = await startWorld({
      hub: { helloTimeoutMs: 300, authenticate: ({ token }) => (token === 'hang' ? new Promise<undefined>(() => {}) : { id: 'anyone' }) },
    });
    const others = await bystanders(world);
    const before = await world.targets();
    const attacker = await world.connect(kind);
    behave(attacker);
    const closed = await attacker.closed;
    if (kind !== 'stdio') expect(closed).toEqual({ code: 1000, reason: 'no hello within 300 ms' });
    await expect.poll(() => world.hub.connectionCount).toBe(2);
    await expectUnharmed(world, before, others);
  });
});

describe('the hello timeout default', () => {
  it(`closes a silent client within a few seconds (${HUB_DEFAULTS.helloTimeoutMs} ms)`, async () => {
    expect(HUB_DEFAULTS.helloTimeoutMs).toBe(5_000);
    const world = await startWorld();
    const silent = await world.connect('ws-json');
    const started = Date.now();
    expect(await silent.closed).toEqual({ code: 1000, reason: 'no hello within 5000 ms' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(4_000);
  }, 15_000);
});

async function pingForever(peer: Peer): Promise<void> {
  let open = true;
  void peer.closed.then(() => (open = false));
  while (open) {
    peer.request('ping', {});
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends an upgrade request by hand and reads the status line and headers of the answer. */
async function rawUpgrade(url: string): Promise<{ status: number; headers: Record<string, string> }> {
  const { connect } = await import('node:net');
  const { port, hostname } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        'GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: lockstep.v1.json\r\n\r\n',
      );
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = ''] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1]), headers });
    });
  });
}

import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRandom } from '@lockstep/core';
import { FakeClock } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';
import type { ReferenceServer, ReferenceServerOptions } from './server.js';
import { SseReader, TEST_TOKEN, authHeaders, call, startTestServer, tempDir, until, type HttpAnswer } from './testing.js';

/**
 * The hardening attack suite over the reference server's REST and SSE API (issue 9): hostile bodies,
 * paths, `since` / `Last-Event-ID` values, SSE connection churn and request floods, over real HTTP.
 * Each case asserts the documented error; after each group a normal client is still served, the
 * streams the attack aimed at kept their versions, and Object.prototype is untouched.
 */

type Server = ReferenceServer & { lines: string[] };

const STREAMS = ['tasks/default', 'orchestration/default', 'focus/default'] as const;
const JSON_HEADERS = { 'Content-Type': 'application/json' };
const PROTOTYPE_NAMES = Object.getOwnPropertyNames(Object.prototype).sort();

/** Every write route, aimed at entities that exist (so a body that got through would change something). */
const WRITE_ROUTES: ReadonlyArray<readonly [method: string, path: string]> = [
  ['POST', '/api/tasks'],
  ['PATCH', '/api/tasks/t_base'],
  ['POST', '/api/sessions'],
  ['POST', '/api/sessions/s_new'],
  ['PATCH', '/api/sessions/s_base'],
  ['PUT', '/api/orchestration/workspaces/w_base/desired'],
  ['PUT', '/api/orchestration/workspaces/w_base/running'],
  ['PUT', '/api/focus'],
];

/** A server (rate limit off unless asked) with one task, one session, one workspace and one focused session. */
async function startVictim(options: ReferenceServerOptions = {}): Promise<Server> {
  const server = await startTestServer({ terminals: false, rateLimit: false, ...options });
  await server.hub.execute({ id: 'base-1', stream: 'tasks/default', type: 'task.create', payload: { id: 't_base', title: 'Base' } });
  await server.hub.execute({ id: 'base-2', stream: 'tasks/default', type: 'session.create', payload: { id: 's_base' } });
  await server.hub.execute({ id: 'base-3', stream: 'orchestration/default', type: 'workspace.setDesired', payload: { workspaceId: 'w_base', desired: 1 } });
  await server.hub.execute({ id: 'base-4', stream: 'focus/default', type: 'focus.set', payload: { sessionId: 's_base' } });
  return server;
}

/** The versions of the attacked streams, read over REST. */
async function versions(server: Server): Promise<Record<string, number>> {
  const result: Record<string, number> = {};
  for (const stream of STREAMS) {
    const answer = await call(server.url, 'GET', `/api/streams/${stream}`);
    expect(answer.status).toBe(200);
    result[stream] = answer.json.version;
  }
  return result;
}

/** After a group: the attacked streams did not move, Object.prototype is as it was, and a normal client is served. */
async function expectUnharmed(server: Server, before: Record<string, number>): Promise<void> {
  expect(await versions(server)).toEqual(before);
  expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_NAMES);
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  const created = await call(server.url, 'POST', '/api/tasks', { body: { title: 'Still served' } });
  expect(created.status).toBe(201);
  const list = await call(server.url, 'GET', '/api/tasks');
  expect(list.status).toBe(200);
  expect(list.json.tasks.map((task: { id: string }) => task.id)).toContain(created.json.id);
  expect(server.lines.filter((line) => /internal|TypeError|RangeError/i.test(line))).toEqual([]);
}

function expectError(answer: HttpAnswer, status: number, code: string, what = ''): void {
  expect({ what, status: answer.status, code: answer.json?.error?.code }).toEqual({ what, status, code });
}

/** A request with raw body bytes (chunked: no declared length, the limit is enforced while reading). */
function rawRequest(
  server: Server,
  method: string,
  path: string,
  body: Buffer | string,
  headers: Record<string, string> = {},
  chunked = false,
): Promise<HttpAnswer> {
  return call(server.url, method, path, { raw: body, headers, chunked });
}

describe('attack over REST: bodies', () => {
  it('refuses oversized bodies with 413, declared or streamed', async () => {
    const server = await startVictim({ maxBodyBytes: 4096 });
    const before = await versions(server);
    const big = JSON.stringify({ title: 'x', description: 'y'.repeat(10_000) });
    for (const [method, path] of WRITE_ROUTES) {
      const declared = await rawRequest(server, method, path, big, JSON_HEADERS);
      expectError(declared, 413, 'PAYLOAD_TOO_LARGE', `${method} ${path}`);
      expect(declared.json.error.details).toEqual({ limit: 4096 });
    }
    const streamed = await rawRequest(server, 'POST', '/api/tasks', big, JSON_HEADERS, true);
    expectError(streamed, 413, 'PAYLOAD_TOO_LARGE');
    await expectUnharmed(server, before);
  });

  it('refuses bodies that are not application/json in UTF-8 with 415', async () => {
    const server = await startVictim();
    const before = await versions(server);
    const body = JSON.stringify({ title: 'Sneaky' });
    const types = [
      undefined,
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/json; charset=latin1',
      'application/json; charset=utf-16',
      'application/javascript',
      'json',
      'application/jsonp',
    ];
    for (const type of types) {
      for (const [method, path] of WRITE_ROUTES) {
        const headers: Record<string, string> = type === undefined ? {} : { 'Content-Type': type };
        expectError(await rawRequest(server, method, path, body, headers), 415, 'INVALID_REQUEST', `${type} ${method} ${path}`);
      }
    }
    await expectUnharmed(server, before);
  });

  it('refuses invalid JSON and invalid UTF-8 with 400 PARSE_ERROR', async () => {
    const server = await startVictim();
    const before = await versions(server);
    const bodies: Array<string | Buffer> = [
      '{"title":',
      '{"title":"x",}',
      "{'title':'x'}",
      '{"title":"x"}{"title":"y"}',
      '{"title":"x"} trailing',
      '\u0000',
      'undefined',
      'NaN',
      '{"title":"\\ud800"', // unterminated
      Buffer.from([0x7b, 0x22, 0x74, 0x69, 0x74, 0x6c, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), // {"title":"<ff fe>"}
      Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), // a broken two-byte sequence
      Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]), // an encoded surrogate
      Buffer.from([0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d]), // an overlong '/'
      Buffer.from([0xef, 0xbb, 0xbf, 0xff]),
    ];
    for (const body of bodies) {
      for (const [method, path] of WRITE_ROUTES) {
        expectError(await rawRequest(server, method, path, body, JSON_HEADERS), 400, 'PARSE_ERROR', `${JSON.stringify(body.toString())} ${method} ${path}`);
      }
    }
    await expectUnharmed(server, before);
  });

  it('answers a few hundred random byte bodies across the write routes with 400, never 5xx (seeded)', async () => {
    const server = await startVictim();
    const before = await versions(server);
    const seed = Number(process.env['LOCKSTEP_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    const random = createRandom(seed);
    const bodies = Array.from({ length: 400 }, (_, n) => {
      const length = 1 + random.int(n % 4 === 0 ? 2000 : 64);
      const bytes = Buffer.alloc(length);
      for (let i = 0; i < length; i++) bytes[i] = random.chance(0.3) ? '{}[]":,0123456789tfn\\'.charCodeAt(random.int(22)) : random.int(256);
      return { route: WRITE_ROUTES[n % WRITE_ROUTES.length]!, bytes };
    });
    const failures: string[] = [];
    for (let at = 0; at < bodies.length; at += 25) {
      const answers = await Promise.all(
        bodies.slice(at, at + 25).map(({ route: [method, path], bytes }) => rawRequest(server, method, path, bytes, JSON_HEADERS)),
      );
      answers.forEach((answer, i) => {
        const { route, bytes } = bodies[at + i]!;
        const ok = answer.status === 400 && ['PARSE_ERROR', 'INVALID_PARAMS'].includes(answer.json?.error?.code);
        if (!ok) failures.push(`${route.join(' ')} ${bytes.toString('hex').slice(0, 80)} → ${answer.status} ${answer.text.slice(0, 120)}`);
      });
    }
    expect(failures, `LOCKSTEP_SEED=${seed} replays this run`).toEqual([]);
    await expectUnharmed(server, before);
  });

  it('refuses deeply nested JSON with 400 without overflowing the stack', async () => {
    const server = await startVictim();
    const before = await versions(server);
    const depth = 50_000;
    const cases = [
      `{"title":"x","description":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      `{"title":"x","nested":${'{"a":'.repeat(depth / 10)}1${'}'.repeat(depth / 10)}}`,
      `{"title":${'['.repeat(depth)}${']'.repeat(depth)}}`,
      `${'['.repeat(depth)}${']'.repeat(depth)}`,
    ];
    for (const body of cases) {
      for (const [method, path] of WRITE_ROUTES) {
        const answer = await rawRequest(server, method, path, body, JSON_HEADERS);
        expectError(answer, 400, 'INVALID_PARAMS', `${body.slice(0, 30)} ${method} ${path}`);
      }
    }
    await expectUnharmed(server, before);
  });

  it('refuses constructor and prototype keys, ignores a top-level __proto__, and Object.prototype stays untouched', async () => {
    const server = await startVictim();
    let before = await versions(server);
    const refused = [
      '{"title":"x","constructor":{"prototype":{"polluted":true}}}',
      '{"title":"x","prototype":{"polluted":true}}',
      '{"title":"x","prompt":{"__proto__":{"polluted":true}}}',
      '{"title":"x","description":{"constructor":{"prototype":{"polluted":true}}}}',
      '{"desired":1,"constructor":{"prototype":{"polluted":true}}}',
      '{"running":1,"prototype":{"desired":2,"polluted":true}}',
      '{"sessionId":"s_base","focused":false,"constructor":{"polluted":true}}',
      '{"status":"completed","constructor":{"prototype":{"status":"cancelled","polluted":true}}}',
    ];
    for (const body of refused) {
      for (const [method, path] of WRITE_ROUTES) {
        const answer = await rawRequest(server, method, path, body, JSON_HEADERS);
        expectError(answer, 400, 'INVALID_PARAMS', `${body} ${method} ${path}`);
      }
    }
    // A top-level __proto__ member is dropped by the body parser: nothing inside it is read, so it
    // can neither supply a required field nor smuggle one in.
    const smuggling: Array<[string, string, string, number, string?]> = [
      ['POST', '/api/tasks', '{"__proto__":{"title":"smuggled","polluted":true}}', 400, 'INVALID_PARAMS'],
      ['PUT', '/api/orchestration/workspaces/w_base/desired', '{"__proto__":{"desired":5}}', 400, 'INVALID_PARAMS'],
      ['PUT', '/api/focus', '{"__proto__":{"sessionId":"s_base","focused":false}}', 400, 'INVALID_PARAMS'],
      ['PATCH', '/api/tasks/t_base', '{"__proto__":{"status":"completed","polluted":true}}', 409, 'COMMAND_REJECTED'],
      ['PATCH', '/api/sessions/s_base', '{"__proto__":{"name":"smuggled"}}', 409, 'COMMAND_REJECTED'],
    ];
    for (const [method, path, body, status, code] of smuggling)
      expectError(await rawRequest(server, method, path, body, JSON_HEADERS), status, code!, `${method} ${path} ${body}`);
    expect(await versions(server)).toEqual(before);
    const created = await rawRequest(
      server,
      'POST',
      '/api/tasks',
      '{"title":"x","__proto__":{"status":"completed","priority":"high","projectId":"other","polluted":true}}',
      JSON_HEADERS,
    );
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ projectId: 'default', status: 'pending', priority: 'medium' });
    expect(created.json).not.toHaveProperty('polluted');
    expect((await call(server.url, 'GET', '/api/streams/tasks/other')).json.version).toBe(0);
    before = await versions(server);

    // Query parameters named like prototype members are unknown parameters or bad project ids.
    for (const query of ['__proto__[polluted]=1', '__proto__=x', 'constructor=x', 'projectId=__proto__', 'projectId=constructor']) {
      const answer = await call(server.url, 'GET', `/api/tasks?${query}`);
      expect([400, 200], query).toContain(answer.status);
      if (answer.status === 400) expect(answer.json.error.code).toBe('INVALID_PARAMS');
    }
    await expectUnharmed(server, before);
  });

  it('keeps prototype-named ids as plain entries of their own', async () => {
    const server = await startVictim();
    for (const id of ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString']) {
      const workspace = await call(server.url, 'PUT', `/api/orchestration/workspaces/${id}/desired`, { body: { desired: 3 } });
      // Either refused as a name, or stored as an ordinary workspace.
      if (workspace.status !== 200) expectError(workspace, 400, 'INVALID_PARAMS', id);
      else expect(workspace.json.workspace, id).toMatchObject({ workspaceId: id, desired: 3 });
      const session = await call(server.url, 'POST', `/api/sessions/${id}`);
      if (session.status !== 201) expectError(session, 400, 'INVALID_PARAMS', id);
      else expect(session.json, id).toMatchObject({ id, taskIds: [] });
      const task = await call(server.url, 'POST', '/api/tasks', { body: { id, title: id } });
      if (task.status !== 201) expectError(task, 400, 'INVALID_PARAMS', id);
      else expect(task.json, id).toMatchObject({ id, title: id });
    }
    const orchestration = await call(server.url, 'GET', '/api/orchestration');
    const sum = orchestration.json.workspaces.reduce((total: number, w: { desired: number }) => total + w.desired, 0);
    expect(orchestration.json.global.desired).toBe(sum);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(PROTOTYPE_NAMES);
    await expectUnharmed(server, await versions(server));
  });

  it('refuses absurd counts and flags', async () => {
    const server = await startVictim();
    const before = await versions(server);
    const values = [
      '1e308',
      '1e400',
      '-1e400',
      '-1',
      '1.5',
      '10001',
      '9007199254740993',
      '"NaN"',
      '"Infinity"',
      '"1"',
      'null',
      'true',
      '[]',
      '{}',
      '"0x10"',
      '""',
    ];
    for (const value of values) {
      for (const field of ['desired', 'running'] as const) {
        const answer = await rawRequest(server, 'PUT', `/api/orchestration/workspaces/w_base/${field}`, `{"${field}":${value}}`, JSON_HEADERS);
        expectError(answer, 400, 'INVALID_PARAMS', `${field}: ${value}`);
      }
      if (value !== 'true')
        expectError(
          await rawRequest(server, 'PUT', '/api/focus', `{"sessionId":"s_base","focused":${value}}`, JSON_HEADERS),
          400,
          'INVALID_PARAMS',
          `focused: ${value}`,
        );
      // Exit codes are any safe integer (-1 and 10001 included), so those two are not absurd there.
      if (value !== '-1' && value !== '10001')
        expectError(
          await rawRequest(server, 'PATCH', '/api/sessions/s_base', `{"exitCode":${value}}`, JSON_HEADERS),
          400,
          'INVALID_PARAMS',
          `exitCode: ${value}`,
        );
    }
    await expectUnharmed(server, before);
  });
});

describe('attack over REST: paths', () => {
  const marker = `lockstep-attack-${process.pid}`;
  const evil = [
    `..%2F..%2F${marker}`,
    `..%2F..%2Fetc%2Fpasswd`,
    `%2E%2E%2F%2E%2E%2F${marker}`,
    `..%5C..%5C${marker}`,
    `tasks%2F..%2F..%2F${marker}`,
    `a%00b`,
    `%00`,
    `x`.repeat(4000),
    `'%3B%20DROP%20TABLE%20events%3B--`,
    `1%20OR%201%3D1`,
    `%22%20OR%20%22%22%3D%22`,
    `%24%7Bjndi%3Aldap%7D`,
    `%25s%25n`,
    `%E2%80%AEtxt`,
    `%FF%FE`,
    `%`,
  ];
  /** The documented status for each code a refused path may carry. */
  const STATUS_OF: Record<string, number> = { INVALID_PARAMS: 400, METHOD_NOT_FOUND: 404, UNKNOWN_STREAM: 404, COMMAND_REJECTED: 404 };

  function expectRefusedPath(answer: HttpAnswer, what: string): void {
    const code = answer.json?.error?.code as string | undefined;
    expect({ what, code: code !== undefined && code in STATUS_OF }, answer.text.slice(0, 200)).toEqual({ what, code: true });
    expect({ what, status: answer.status }).toEqual({ what, status: STATUS_OF[code!] });
  }

  async function expectNothingOutside(root: string): Promise<void> {
    expect(await readdir(root)).toEqual(['data']);
    for (const dir of [tmpdir(), process.cwd(), join(root, '..', '..')]) {
      expect(
        (await readdir(dir)).filter((name) => name.includes(marker)),
        dir,
      ).toEqual([]);
    }
    expect(existsSync(`/etc/passwd${marker}`)).toBe(false);
  }

  it('refuses traversal, NUL, overlong and SQL-ish stream names on the stream routes', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'data'));
    const server = await startVictim({ dataDir: join(root, 'data') });
    const before = await versions(server);
    for (const name of evil) {
      for (const path of [
        `/api/streams/${name}`,
        `/api/streams/tasks/${name}`,
        `/api/streams/${name}/default`,
        `/api/streams/${name}/events`,
        `/api/streams/tasks/${name}/events?since=0`,
      ]) {
        expectRefusedPath(await call(server.url, 'GET', path), path.slice(0, 80));
        expectRefusedPath(await call(server.url, 'GET', path, { headers: { Accept: 'text/event-stream' } }), `SSE ${path.slice(0, 80)}`);
      }
    }
    expect(server.eventStreams()).toHaveLength(0);
    await expectUnharmed(server, before);
    await expectNothingOutside(root);
  });

  it('refuses or contains hostile ids on the task, session and orchestration routes', async () => {
    const root = await tempDir();
    await mkdir(join(root, 'data'));
    const server = await startVictim({ dataDir: join(root, 'data') });
    const before = await versions(server);
    for (const id of evil) {
      const attempts: Array<[string, string, unknown?]> = [
        ['PATCH', `/api/tasks/${id}`, { title: 'x' }],
        ['DELETE', `/api/tasks/${id}`],
        ['PATCH', `/api/sessions/${id}`, { name: 'x' }],
        ['DELETE', `/api/sessions/${id}`],
        ['POST', `/api/sessions/${id}/tasks/t_base`],
        ['POST', `/api/sessions/s_base/tasks/${id}`],
        ['DELETE', `/api/sessions/s_base/tasks/${id}`],
        ['DELETE', `/api/orchestration/workspaces/${id}`],
        ['GET', `/api/tasks?projectId=${id}`],
        ['GET', `/api/sessions?projectId=${id}`],
        ['GET', `/api/focus?projectId=${id}`],
        ['POST', `/api/tasks?projectId=${id}`, { title: 'x' }],
        ['POST', '/api/tasks', { id: decodeURIComponentSafe(id), title: 'x' }],
      ];
      for (const [method, path, body] of attempts) {
        expectRefusedPath(await call(server.url, method, path, body === undefined ? {} : { body }), `${method} ${path.slice(0, 80)}`);
      }
    }
    await expectUnharmed(server, before);
    await expectNothingOutside(root);
  });
});

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

describe('attack over SSE', () => {
  it('refuses absurd since and Last-Event-ID values with 400 before any stream starts', async () => {
    const server = await startVictim();
    const before = await versions(server);
    const absurd = ['-1', '1e999', 'abc', '99999999999999999999', '9007199254740993', '1.5', '0x10', ' 1', '01', '+1', 'Infinity', 'NaN', '%00'];
    for (const value of absurd) {
      const since = `/api/streams/tasks/default/events?since=${encodeURIComponent(value)}`;
      expectError(await call(server.url, 'GET', since), 400, 'INVALID_PARAMS', `since=${value}`);
      expectError(await call(server.url, 'GET', since, { headers: { Accept: 'text/event-stream' } }), 400, 'INVALID_PARAMS', `SSE since=${value}`);
      if (value.trim() !== value || value === '%00') continue; // header values are trimmed by HTTP itself
      for (const path of ['/api/streams/tasks/default', '/api/streams/tasks/default/events']) {
        const answer = await call(server.url, 'GET', path, { headers: { Accept: 'text/event-stream', 'Last-Event-ID': value } });
        expectError(answer, 400, 'INVALID_PARAMS', `Last-Event-ID ${value} on ${path}`);
      }
    }
    expect(server.eventStreams()).toHaveLength(0);
    await expectUnharmed(server, before);
  });

  it('answers a since or Last-Event-ID beyond the head with the stream as it is, never events from nowhere', async () => {
    const server = await startVictim();
    const before = await versions(server);
    const head = before['tasks/default']!;
    for (const value of [head + 1, 1_000_000, Number.MAX_SAFE_INTEGER]) {
      const json = await call(server.url, 'GET', `/api/streams/tasks/default/events?since=${value}`);
      expect(json.status, `since=${value}: ${json.text}`).toBe(200);
      expect(json.json).toMatchObject({ stream: 'tasks/default', version: head, head });
      expect(json.json.events ?? []).toEqual([]);
      for (const [path, headers] of [
        [`/api/streams/tasks/default/events?since=${value}`, {}],
        ['/api/streams/tasks/default/events', { 'Last-Event-ID': String(value) }],
        ['/api/streams/tasks/default', { 'Last-Event-ID': String(value) }],
      ] as const) {
        const reader = new SseReader(server.url, path, headers);
        await reader.opened();
        if (reader.status !== 200) {
          await reader.waitFor((r) => r.ended, 'the error');
          expect(reader.status, path).toBeGreaterThanOrEqual(400);
          expect(reader.status, path).toBeLessThan(500);
        } else {
          // Clean behaviour: the current state, then live events only.
          await reader.waitFor((r) => r.messages.length >= 1 || r.ended, `${path}: a first message`);
          for (const message of reader.messages) expect(Number(message.id), path).toBeLessThanOrEqual(head);
        }
        reader.close();
      }
    }
    await until(() => server.eventStreams().length === 0, 'no stream left open');
    await expectUnharmed(server, before);
  });

  it('releases many SSE connections dropped abruptly, and keeps serving', async () => {
    // 120 streams from one address: past the per-address cap, which has a test of its own.
    const server = await startVictim({ eventStreams: { heartbeatMs: 50 }, maxEventStreamsPerAddress: 200 });
    const before = await versions(server);
    const connections = server.hub.connectionCount;
    const port = Number(new URL(server.url).port);
    const request = (path: string) =>
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nAccept: text/event-stream\r\n\r\n`;
    const paths = [
      '/api/streams/tasks/default',
      '/api/streams/tasks/default/events?since=0',
      '/api/streams/orchestration%2Fdefault',
      '/api/streams/focus/default/events',
    ];

    const open = (path: string): Socket => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(request(path));
      return socket;
    };
    const sockets = Array.from({ length: 120 }, (_, n) => open(paths[n % paths.length]!));
    // Half-sent requests dropped before their headers end.
    const halves = Array.from({ length: 20 }, () => {
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`GET /api/streams/tasks/default HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAcc`);
      return socket;
    });
    await until(() => server.eventStreams().length === sockets.length, `${sockets.length} streams open`);
    // A live reader still gets events while they are all open.
    const reader = new SseReader(server.url, '/api/streams/tasks/default/events', { 'Last-Event-ID': String(before['tasks/default']) });
    await reader.opened();
    expect(reader.status).toBe(200);

    sockets.forEach((socket, n) => (n % 2 === 0 ? socket.resetAndDestroy() : socket.destroy()));
    halves.forEach((socket) => socket.resetAndDestroy());
    await until(() => server.eventStreams().length === 1 && server.hub.connectionCount === connections + 1, 'the dropped streams to be released');
    reader.close();
    await until(() => server.eventStreams().length === 0 && server.hub.connectionCount === connections, 'every stream released');
    await expectUnharmed(server, before);
  });
});

describe('attack over REST: request floods', () => {
  it('answers a flood with 429 and Retry-After, serves another address, and recovers after the cool-down', async () => {
    const clock = new FakeClock();
    const server = await startVictim({ clock, rateLimit: { requestsPerSecond: 20, burst: 20 } });
    const before = await versions(server);
    await clock.advance(1000); // the bucket full again after those reads
    // The burst goes to reads; the rest of the flood, writes among it, is refused.
    const burst = await Promise.all(Array.from({ length: 20 }, () => call(server.url, 'GET', '/api/streams/tasks/default')));
    expect(burst.map((answer) => answer.status)).toEqual(burst.map(() => 200));
    const limited = await Promise.all(
      Array.from({ length: 150 }, (_, n) => call(server.url, n % 2 === 0 ? 'POST' : 'GET', '/api/tasks', n % 2 === 0 ? { body: { title: `flood ${n}` } } : {})),
    );
    expect(limited.map((answer) => answer.status)).toEqual(limited.map(() => 429));
    for (const answer of limited) {
      expect(answer.json.error).toMatchObject({ code: 'RATE_LIMITED', details: { retryAfterMs: expect.any(Number) } });
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
    // Event streams are limited too.
    expect((await call(server.url, 'GET', '/api/streams/tasks/default/events', { headers: { Accept: 'text/event-stream' } })).status).toBe(429);
    expect(server.eventStreams()).toHaveLength(0);

    // Another address is not affected by the flood.
    const other = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/api/tasks`, { localAddress: '127.0.0.2', headers: { Connection: 'close', ...authHeaders(server.url) } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    expect(other).toBe(200);

    await clock.advance(1000);
    await expectUnharmed(server, before);
  });
});

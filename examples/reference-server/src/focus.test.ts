import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LockstepError, type FocusState } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
import { UNKNOWN_SESSION } from './focusCheck.js';
import { RawPeer, TEST_TOKEN, call, startTestServer, tempDir, until, type HttpAnswer } from './testing.js';

/**
 * Seed 001 end to end: grid focus (`focus.setMany`) and `maxFocused` over REST, the CLI and
 * WebSocket; focusing a session that does not exist is refused (`focus.unknownSession`) on every
 * path; the focus set outlives a restart without a single focus event written by the restart.
 */

const json = (body: unknown) => ({ body });

type Server = Awaited<ReturnType<typeof startTestServer>>;

async function createSessions(server: Server, ...ids: string[]): Promise<void> {
  for (const id of ids) expect((await call(server.url, 'POST', `/api/sessions/${id}`)).status).toBe(201);
}

const focusOf = async (server: Server, stream = 'focus/default') => (await server.hub.read(stream)) as { state: FocusState; version: number };

/** The types and data of a stream's events, over REST. */
async function eventsOf(server: Server, stream: string): Promise<Array<[string, unknown]>> {
  const answer = await call(server.url, 'GET', `/api/streams/${stream}/events?since=0`);
  return answer.json.events.map((event: { type: string; data: unknown }) => [event.type, event.data]);
}

function expectRejected(answer: HttpAnswer, status: number, reason: string, details: Record<string, unknown> = {}): void {
  expect(answer.status, answer.text).toBe(status);
  expect(answer.json.error).toMatchObject({ code: 'COMMAND_REJECTED', details: { reason, ...details } });
}

describe('REST: grid focus and maxFocused', () => {
  it('replaces the whole set with PUT /api/focus {sessionIds}: kept sessions keep their place, others lose focus', async () => {
    const server = await startTestServer({ terminals: false });
    await createSessions(server, 's1', 's2', 's3', 's4');
    await call(server.url, 'PUT', '/api/focus', json({ sessionId: 's4', focused: true }));

    const grid = await call(server.url, 'PUT', '/api/focus', json({ sessionIds: ['s1', 's2', 's4'] }));
    expect(grid.status).toBe(200);
    expect(grid.json).toMatchObject({ projectId: 'default', focusedSessions: ['s4', 's1', 's2'], totalFocused: 3, maxFocused: 4 });
    expect(grid.headers).toMatchObject({ etag: `"${grid.json.version}"`, 'lockstep-version': String(grid.json.version) });

    const replaced = await call(server.url, 'PUT', '/api/focus?projectId=default', json({ sessionIds: ['s3', 's2'] }));
    expect(replaced.json.focusedSessions).toEqual(['s2', 's3']);
    const lost = (await eventsOf(server, 'focus/default')).filter(([type]) => type === 'focus.lost').map(([, data]) => data);
    expect(lost).toEqual([
      { sessionId: 's4', reason: 'replaced' },
      { sessionId: 's1', reason: 'replaced' },
    ]);

    const cleared = await call(server.url, 'PUT', '/api/focus', json({ sessionIds: [] }));
    expect(cleared.json).toMatchObject({ focusedSessions: [], totalFocused: 0 });
  });

  it('sets maxFocused with PUT /api/focus/config: a larger grid fits, a smaller limit unfocuses the least recently active', async () => {
    const server = await startTestServer({ terminals: false });
    const ids = ['s1', 's2', 's3', 's4', 's5', 's6'];
    await createSessions(server, ...ids);
    expectRejected(await call(server.url, 'PUT', '/api/focus', json({ sessionIds: ids })), 409, 'focus.tooMany', { maxFocused: 4, requested: 6 });

    const six = await call(server.url, 'PUT', '/api/focus/config', json({ maxFocused: 6 }));
    expect(six.status).toBe(200);
    expect(six.json).toMatchObject({ maxFocused: 6, focusedSessions: [] });
    expect((await call(server.url, 'PUT', '/api/focus', json({ sessionIds: ids }))).json).toMatchObject({ totalFocused: 6, maxFocused: 6 });
    // s1 active again: it stays when the limit shrinks; the others go in focus order.
    await call(server.url, 'PUT', '/api/focus', json({ sessionId: 's1', focused: true }));
    const two = await call(server.url, 'PUT', '/api/focus/config', json({ projectId: 'default', maxFocused: 2 }));
    expect(two.json).toMatchObject({ maxFocused: 2, focusedSessions: ['s1', 's6'] });
    const reconfigured = (await eventsOf(server, 'focus/default')).filter(
      ([type, data]) => type === 'focus.lost' && (data as { reason: string }).reason === 'reconfigured',
    );
    expect(reconfigured.map(([, data]) => (data as { sessionId: string }).sessionId)).toEqual(['s2', 's3', 's4', 's5']);
    expect((await call(server.url, 'GET', '/api/focus')).json).toMatchObject({ maxFocused: 2, focusedSessions: ['s1', 's6'] });

    // The limit is the domain's: 1–64, a whole number; nothing else in the body.
    const before = await focusOf(server);
    for (const body of [{ maxFocused: 0 }, { maxFocused: 65 }, { maxFocused: 2.5 }, { maxFocused: 'many' }, {}, { maxFocused: 3, sessionId: 's1' }]) {
      const refused = await call(server.url, 'PUT', '/api/focus/config', json(body));
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.json.error.code).toBe('INVALID_PARAMS');
    }
    expect(await focusOf(server)).toEqual(before);
  });
});

describe('focusing a session that does not exist', () => {
  it('is refused over REST with focus.unknownSession and changes nothing: no slot taken, no eviction', async () => {
    const server = await startTestServer({ terminals: false });
    await createSessions(server, 's1', 's2', 's3', 's4');
    await call(server.url, 'PUT', '/api/focus', json({ sessionIds: ['s1', 's2', 's3', 's4'] }));
    const before = await focusOf(server);

    const ghost = await call(server.url, 'PUT', '/api/focus', json({ sessionId: 'ghost', focused: true }));
    expectRejected(ghost, 409, UNKNOWN_SESSION, { stream: 'tasks/default', sessionIds: ['ghost'] });
    expect(ghost.json.error.message).toMatch(/no session ghost in tasks\/default/);
    // One unknown id refuses the whole grid.
    expectRejected(await call(server.url, 'PUT', '/api/focus', json({ sessionIds: ['s1', 'ghost', 's2', 'phantom'] })), 409, UNKNOWN_SESSION, {
      sessionIds: ['ghost', 'phantom'],
    });
    expect(await focusOf(server)).toEqual(before);

    // Sessions of another project are not this project's: each project is checked against its own tasks.
    expectRejected(await call(server.url, 'PUT', '/api/focus', json({ projectId: 'proj_123', sessionId: 's1', focused: true })), 409, UNKNOWN_SESSION, {
      stream: 'tasks/proj_123',
    });
    await call(server.url, 'POST', '/api/sessions', json({ projectId: 'proj_123', id: 'elsewhere' }));
    expect((await call(server.url, 'PUT', '/api/focus', json({ projectId: 'proj_123', sessionId: 'elsewhere', focused: true }))).json.focusedSessions).toEqual([
      'elsewhere',
    ]);

    // Unfocusing never needs the session: blurring a ghost is a no-op, not an error.
    expect((await call(server.url, 'PUT', '/api/focus', json({ sessionId: 'ghost', focused: false }))).status).toBe(200);
    expect(await focusOf(server)).toEqual(before);
  });

  it('is refused for a WebSocket client the same way, straight from the hub', async () => {
    const server = await startTestServer({ terminals: false });
    await createSessions(server, 's1');
    const peer = await RawPeer.connect(server.wsUrl);
    const refusal = await peer.request('command', { id: 'ws-ghost', stream: 'focus/default', type: 'focus.set', payload: { sessionId: 'ghost' } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(LockstepError);
    expect(refusal).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: UNKNOWN_SESSION, sessionIds: ['ghost'] } });
    const grid = await peer
      .request('command', { id: 'ws-grid', stream: 'focus/default', type: 'focus.setMany', payload: { sessionIds: ['s1', 'ghost'] } })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(grid).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: UNKNOWN_SESSION } });
    expect((await focusOf(server)).version).toBe(0);

    expect(await peer.request('command', { id: 'ws-real', stream: 'focus/default', type: 'focus.set', payload: { sessionId: 's1' } })).toMatchObject({
      version: 1,
    });
    expect((await focusOf(server)).state.focused).toEqual(['s1']);
  });
});

describe('a restart', () => {
  it('keeps the focus set and the limit, respawns the terminals, and writes no focus event', async () => {
    const dataDir = await tempDir();
    const first = await startTestServer({ dataDir });
    await createSessions(first, 's1', 's2', 's3');
    await until(() => ['s1', 's2', 's3'].every((id) => first.terminals.get(id)?.running === true), 'three shells');
    await call(first.url, 'PUT', '/api/focus/config', json({ maxFocused: 3 }));
    await call(first.url, 'PUT', '/api/focus', json({ sessionIds: ['s2', 's3'] }));
    const before = await call(first.url, 'GET', '/api/focus');
    const eventsBefore = await eventsOf(first, 'focus/default');
    await first.close();

    const second = await startTestServer({ dataDir });
    // Its terminals are back (the server resolves once the sessions present have theirs)…
    expect(['s1', 's2', 's3'].map((id) => second.terminals.get(id)?.running)).toEqual([true, true, true]);
    // …and the focus stream is exactly as it was: same sessions, same limit, same version, no event added.
    const after = await call(second.url, 'GET', '/api/focus');
    expect(after.json).toEqual(before.json);
    expect(after.json).toMatchObject({ focusedSessions: ['s2', 's3'], maxFocused: 3 });
    expect(await eventsOf(second, 'focus/default')).toEqual(eventsBefore);

    // A shell that ends by itself still gives its focus up.
    second.terminals.get('s3')!.write('exit\n');
    await until(async () => (await focusOf(second)).state.focused.length === 1, "s3's focus released");
    expect((await eventsOf(second, 'focus/default')).at(-1)).toEqual(['focus.lost', { sessionId: 's3', reason: 'closed' }]);
  });
});

describe('the CLI: focus set-many, focus configure', () => {
  const require = createRequire(import.meta.url);
  const TSX = pathToFileURL(require.resolve('tsx')).href;
  const CLI_MAIN = fileURLToPath(new URL('../../../packages/cli/src/main.ts', import.meta.url));

  /** `lockstep <args> --server <url> --token <TEST_TOKEN>` as a process, to its end. */
  async function lockstep(server: Server, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('LOCKSTEP_')));
    const child = spawn(process.execPath, ['--conditions=lockstep-source', '--import', TSX, CLI_MAIN, ...args, '--server', server.url, '--token', TEST_TOKEN], {
      stdio: 'pipe',
      env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    return { code, stdout: stdout.trim(), stderr: stderr.trim() };
  }

  it('sets the grid and the limit, and a ghost is refused with its reason (exit 1)', async () => {
    const server = await startTestServer({ terminals: false });
    await createSessions(server, 's1', 's2', 's3', 's4', 's5');

    const grid = await lockstep(server, 'focus', 'set-many', 's1', 's2', 's3');
    expect(grid).toMatchObject({ code: 0, stdout: 'focused s1, s2, s3' });
    const replaced = await lockstep(server, 'focus', 'set-many', 's3', 's4', '--json');
    expect(replaced.code).toBe(0);
    expect(JSON.parse(replaced.stdout)).toMatchObject({
      stream: 'focus/default',
      sessionIds: ['s3', 's4'],
      replaced: ['s1', 's2'],
      focused: ['s3', 's4'],
      maxFocused: 4,
    });

    expect(await lockstep(server, 'focus', 'configure', '--max', '1')).toMatchObject({ code: 0, stdout: 'at most 1 sessions focused (unfocused s3)' });
    expect(await lockstep(server, 'focus', 'configure', '--max', '1')).toMatchObject({ code: 0, stdout: 'at most 1 sessions focused, unchanged' });
    expect((await focusOf(server)).state).toMatchObject({ maxFocused: 1, focused: ['s4'] });

    const before = await focusOf(server);
    const ghost = await lockstep(server, 'focus', 'set', 'ghost', '--json');
    expect(ghost.code).toBe(1);
    expect(ghost.stderr).toMatch(/^lockstep: COMMAND_REJECTED \(focus\.unknownSession\): no session ghost in tasks\/default/);
    expect(JSON.parse(ghost.stdout)).toMatchObject({ error: { code: 'COMMAND_REJECTED', reason: UNKNOWN_SESSION, data: { sessionIds: ['ghost'] } } });
    expect((await lockstep(server, 'focus', 'set-many', 's1', 'ghost')).code).toBe(1);
    expect(await focusOf(server)).toEqual(before);
    // (Arguments refused before anything is sent: packages/cli/src/commands/focus.test.ts.)
  });
});

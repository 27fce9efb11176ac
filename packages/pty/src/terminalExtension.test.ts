import { ErrorCodes, tasksDomain, type TasksState } from '@lockstep/core';
import type { Identity } from '@lockstep/server';
import { createClient } from '@lockstep/client';
import { webSocketConnector } from '@lockstep/ws';
import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from './processTree.js';
import { seqOutput, waitFor, waitForOutput, waitGone } from './test/helpers.js';
import { Viewer, rejection, startHub, type TestHub } from './test/wsHarness.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function hubFor(...args: Parameters<typeof startHub>): Promise<TestHub> {
  const started = await startHub(...args);
  cleanup.push(() => started.close());
  return started;
}

async function viewer(test: TestHub, hello: { clientId?: string; token?: string } = {}): Promise<Viewer> {
  const connected = await Viewer.connect(test.url, hello);
  cleanup.push(() => connected.close());
  return connected;
}

describe('terminal extension over WebSocket', () => {
  it('delivers `seq 1 200000` byte-identical, then the exit code once; the tasks stream shows the lifecycle', async () => {
    const test = await hubFor({ scrollbackBytes: 4 * 1024 * 1024 });
    const client = createClient({ connect: webSocketConnector(test.url), clientId: 'board' });
    cleanup.push(async () => client.close());
    const board = client.stream(tasksDomain, 'proj_1');

    const terminal = await test.extension.terminals.spawn({ id: 'seq', project: 'proj_1', file: 'seq', args: ['1', '200000'] });
    const v = await viewer(test);
    const attached = await v.attach('seq');
    expect(attached).toMatchObject({ terminalId: 'seq', runId: terminal.runId, offset: 0, cols: 80, rows: 24 });
    expect(attached.truncated).toBeUndefined();

    expect(await v.waitForExit('seq')).toEqual({ terminalId: 'seq', exitCode: 0 });
    const expected = seqOutput(200_000);
    expect(v.bytes('seq').length).toBe(Buffer.byteLength(expected));
    expect(v.text('seq') === expected).toBe(true); // not toBe: a 1.4 MB diff is no help
    expect(v.gaps).toEqual([]);
    expect(v.notifications.at(-1)?.method).toBe('terminal.exit');
    expect(v.exitsOf('seq')).toHaveLength(1);

    // The session was created running and updated to exited with its code, once each.
    await waitFor(() => board.getSnapshot().sessions['seq']?.status === 'exited');
    expect(board.getSnapshot().sessions['seq']).toMatchObject({ id: 'seq', kind: 'terminal', status: 'exited', exitCode: 0 });
    const { state } = await test.hub.read('tasks/proj_1');
    expect((state as TasksState).sessions['seq']?.exitCode).toBe(0);
    const log = await test.hub.store.read('tasks/proj_1', 1, 100);
    expect(log.map((event) => [event.type, event.commandId])).toEqual([
      ['session.created', `pty:seq:${terminal.runId}:start`],
      ['session.updated', `pty:seq:${terminal.runId}:exit`],
    ]);
    expect(log[0]?.data).toMatchObject({ kind: 'terminal', status: 'running' });
  });

  it('detach and reattach resume at the offset: no gap, no duplicate — on the same and on a new connection', async () => {
    const test = await hubFor({ scrollbackBytes: 8 * 1024 * 1024 });
    // Echo off, so the output is exactly the two halves; each half waits for a line of input.
    const script = 'stty -echo; read go; seq 1 100000; read go; seq 100001 200000; read go; seq 200001 300000';
    const terminal = await test.extension.terminals.spawn({ id: 'halves', file: '/bin/sh', args: ['-c', script] });
    const expected = Buffer.from(seqOutput(300_000));

    const first = await viewer(test);
    await first.attach('halves');
    terminal.write('go\n');
    await first.waitForBytes('halves', 100_000);
    await first.detach('halves'); // output sent before the answer has arrived before it; none after
    const afterDetach = first.next('halves');
    expect(afterDetach).toBeGreaterThanOrEqual(100_000);
    const outputsAtDetach = first.outputs.length;

    terminal.write('go\n'); // the second half is written while nobody watches
    await waitFor(() => terminal.written >= Buffer.byteLength(seqOutput(200_000)), 'the second half');
    const resumed = await first.attach('halves', afterDetach);
    expect(resumed).toMatchObject({ offset: afterDetach });
    expect(resumed.truncated).toBeUndefined();
    await first.waitForBytes('halves', Buffer.byteLength(seqOutput(200_000)));
    expect(first.outputs[outputsAtDetach]?.offset).toBe(afterDetach);

    // A connection that drops mid-stream; a new one resumes from what the old one had.
    const dropped = first.next('halves');
    first.socket.terminate();
    terminal.write('go\n');
    const second = await viewer(test);
    await second.attach('halves', dropped);
    await second.waitForExit('halves');
    const stitched = Buffer.concat([first.bytes('halves').subarray(0, dropped), second.bytes('halves')]);
    expect(stitched.equals(expected)).toBe(true);
    expect(first.gaps).toEqual([]);
    expect(second.gaps).toEqual([]);
  });

  it('sends terminal.exit once per attachment, after the last output; a late attach replays, then gets it too', async () => {
    const test = await hubFor();
    const terminal = await test.extension.terminals.spawn({ id: 'seven', file: '/bin/sh', args: ['-c', 'read x; printf done; exit 7'] });
    const a = await viewer(test);
    const b = await viewer(test);
    await a.attach('seven');
    await b.attach('seven');
    await a.attach('seven'); // attaching again restarts that attachment; it still ends with one exit
    terminal.write('\n');
    for (const v of [a, b]) {
      expect(await v.waitForExit('seven')).toEqual({ terminalId: 'seven', exitCode: 7 });
      expect(v.text('seven').endsWith('done')).toBe(true);
      expect(v.notifications.at(-1)?.method).toBe('terminal.exit');
    }
    const late = await viewer(test);
    const result = await late.attach('seven');
    expect(result).toMatchObject({ exited: true, offset: 0 });
    await late.waitForExit('seven');
    expect(late.text('seven')).toBe('\r\ndone');
    // Wait a moment of I/O for any duplicate to show up: none may.
    await Promise.all([a, b, late].map((v) => v.request('ping', {})));
    expect([a, b, late].map((v) => v.exitsOf('seven').length)).toEqual([1, 1, 1]);

    const killed = await test.extension.terminals.spawn({ id: 'killed', project: 'p', file: '/bin/sleep', args: ['1000'] });
    await a.attach('killed');
    killed.kill('SIGTERM');
    expect(await a.waitForExit('killed')).toEqual({ terminalId: 'killed', exitCode: 0, signal: 'SIGTERM' });
    await waitFor(() => readSession(test, 'p', 'killed')?.status === 'exited');
    expect(readSession(test, 'p', 'killed')?.exitCode).toBe(128 + 15); // the shell's convention for a signal
  });

  it('takes input and resizes; the program sees the new size and every viewer hears of it', async () => {
    const test = await hubFor();
    await test.extension.terminals.spawn({ id: 'size', file: '/bin/sh', args: ['-c', 'while read line; do echo "[$line]"; stty size; done'] });
    const a = await viewer(test);
    const b = await viewer(test);
    await a.attach('size');
    await b.attach('size');
    await a.request('terminal.input', { terminalId: 'size', data: 'héllo\n' });
    await waitFor(() => a.text('size').includes('[héllo]\r\n24 80\r\n'));
    expect(await a.request('terminal.resize', { terminalId: 'size', cols: 120, rows: 40 })).toEqual({ cols: 120, rows: 40 });
    await a.request('terminal.input', { terminalId: 'size', data: Buffer.from('bytes\n').toString('base64'), encoding: 'base64' });
    await waitFor(() => a.text('size').includes('[bytes]\r\n40 120\r\n'));
    await waitFor(() => b.resized.length > 0);
    expect(b.resized).toEqual([{ terminalId: 'size', cols: 120, rows: 40 }]);

    for (const bad of [{ cols: 0, rows: 10 }, { cols: 1001, rows: 10 }, { cols: 80.5, rows: 10 }, { cols: 80 }]) {
      expect((await rejection(a.request('terminal.resize', { terminalId: 'size', ...bad }))).code).toBe('INVALID_PARAMS');
    }
    for (const bad of [{ data: 'not base64!', encoding: 'base64' }, { data: 'x'.repeat(64 * 1024 + 1) }, { data: 42 }]) {
      expect((await rejection(a.request('terminal.input', { terminalId: 'size', ...bad }))).code).toBe('INVALID_PARAMS');
    }
  });

  it('refuses input and resize without write permission on terminal/<id>; unknown terminals are UNKNOWN_STREAM', async () => {
    const roles: Record<string, Identity> = { viewer: { id: 'ann', role: 'viewer' }, operator: { id: 'bob', role: 'operator' } };
    const asked: string[] = [];
    const test = await hubFor(
      {},
      {
        authenticate: ({ token }) => (token === undefined ? undefined : roles[token]),
        authorize: (identity, stream, action) => {
          if (stream.startsWith('terminal/')) asked.push(`${identity?.['role']} ${action} ${stream}`);
          if (stream === 'terminal/secret') return false;
          return action === 'read' || identity?.['role'] === 'operator';
        },
      },
    );
    const terminal = await test.extension.terminals.spawn({ id: 'shared', file: '/bin/cat' });
    const ann = await viewer(test, { token: 'viewer' });
    const bob = await viewer(test, { token: 'operator' });
    await ann.attach('shared');
    await bob.attach('shared');

    const refused = await rejection(ann.request('terminal.input', { terminalId: 'shared', data: 'rm -rf /\n' }));
    expect(refused.code).toBe('FORBIDDEN');
    expect(refused.rpcCode).toBe(ErrorCodes.FORBIDDEN);
    expect(refused.data).toEqual({ stream: 'terminal/shared', action: 'write' });
    expect((await rejection(ann.request('terminal.resize', { terminalId: 'shared', cols: 10, rows: 10 }))).code).toBe('FORBIDDEN');
    expect(terminal.cols).toBe(80);

    await bob.request('terminal.input', { terminalId: 'shared', data: 'from bob\n' });
    await waitFor(() => ann.text('shared').includes('from bob\r\nfrom bob\r\n')); // the echo, then cat
    expect(ann.text('shared')).not.toContain('rm -rf');

    // Authorization comes first: a refused viewer cannot probe which terminals exist.
    expect((await rejection(ann.attach('secret'))).code).toBe('FORBIDDEN');
    const unknown = await rejection(bob.attach('nope'));
    expect(unknown.code).toBe('UNKNOWN_STREAM');
    expect(unknown.data).toEqual({ terminalId: 'nope' });
    expect((await rejection(bob.request('terminal.input', { terminalId: 'nope', data: 'x' }))).code).toBe('UNKNOWN_STREAM');
    expect(asked).toContain('viewer write terminal/shared');
    expect(asked).toContain('viewer read terminal/shared');
  });

  it('validates every param and answers with stable codes', async () => {
    const test = await hubFor({ scrollbackBytes: 1024 });
    const terminal = await test.extension.terminals.spawn({ id: 'short', file: 'seq', args: ['1', '2000'] });
    await terminal.exited;
    const v = await viewer(test);
    const invalid = [
      ['terminal.attach', { terminalId: '../x' }],
      ['terminal.attach', { terminalId: 'short', since: -1 }],
      ['terminal.attach', { terminalId: 'short', since: 1.5 }],
      ['terminal.attach', {}],
      ['terminal.attach', 'short'],
      ['terminal.detach', { terminalId: 42 }],
      ['terminal.input', { terminalId: 'short' }],
      ['terminal.resize', { terminalId: 'short', cols: '80', rows: 24 }],
    ] as const;
    for (const [method, params] of invalid) {
      const error = await rejection(v.request(method, params));
      expect(error.code, `${method} ${JSON.stringify(params)}`).toBe('INVALID_PARAMS');
      expect((error.data as { issues: unknown[] }).issues.length).toBeGreaterThan(0);
    }
    const ahead = await rejection(v.attach('short', terminal.end + 1));
    expect(ahead.code).toBe('INVALID_PARAMS');
    expect(ahead.data).toEqual({ reason: 'sinceAhead', end: terminal.end, runId: terminal.runId });
    const exited = await rejection(v.request('terminal.input', { terminalId: 'short', data: 'x' }));
    expect(exited.code).toBe('COMMAND_REJECTED');
    expect(exited.data).toEqual({ reason: 'terminal.exited', terminalId: 'short' });
    expect((await rejection(v.request('terminal.resize', { terminalId: 'short', cols: 9, rows: 9 }))).code).toBe('COMMAND_REJECTED');
    expect(await v.detach('never-attached')).toEqual({});

    // Before hello, terminal methods are refused like every other method.
    const early = await Viewer.connect(test.url, false);
    cleanup.push(() => early.close());
    expect((await rejection(early.attach('short'))).code).toBe('HANDSHAKE_REQUIRED');
  });

  it('answers an attach below the scrollback with `truncated` and exactly the retained tail', async () => {
    const test = await hubFor({ scrollbackBytes: 1024 });
    const terminal = await test.extension.terminals.spawn({ id: 'long', file: 'seq', args: ['1', '5000'] });
    await terminal.exited;
    const expected = Buffer.from(seqOutput(5000));
    expect(terminal.end).toBe(expected.length);

    const fromStart = await viewer(test);
    const result = await fromStart.attach('long', 0);
    expect(result).toEqual({
      terminalId: 'long',
      runId: terminal.runId,
      offset: expected.length - 1024,
      end: expected.length,
      truncated: true,
      cols: 80,
      rows: 24,
      exited: true,
    });
    await fromStart.waitForExit('long');
    expect(fromStart.bytes('long').equals(expected.subarray(-1024))).toBe(true);

    const within = await viewer(test);
    const inside = expected.length - 100;
    const exact = await within.attach('long', inside);
    expect(exact.offset).toBe(inside);
    expect(exact.truncated).toBeUndefined();
    await within.waitForExit('long');
    expect(within.bytes('long').equals(expected.subarray(inside))).toBe(true);
  });

  it('reassembles UTF-8 output split across chunks exactly (data is base64 of raw bytes)', async () => {
    const test = await hubFor({ chunkBytes: 7, scrollbackBytes: 1 << 20 });
    const text = 'héllo wörld ✓ 日本語 🎉 ñ€𝄞 '.repeat(50);
    await test.extension.terminals.spawn({ id: 'utf8', file: '/usr/bin/printf', args: ['%s', text], env: { LANG: 'C.UTF-8' } });
    const v = await viewer(test);
    await v.attach('utf8');
    await v.waitForExit('utf8');
    expect(v.outputs.every((output) => Buffer.from(output.data, 'base64').length <= 7)).toBe(true);
    // Some chunks end inside a multi-byte sequence…
    const strict = new TextDecoder('utf-8', { fatal: true });
    expect(
      v.outputs.some((output) => {
        try {
          strict.decode(Buffer.from(output.data, 'base64'));
          return false;
        } catch {
          return true;
        }
      }),
    ).toBe(true);
    // …and the bytes, concatenated or decoded as a stream, are exactly the text.
    expect(v.text('utf8')).toBe(text);
    const streaming = new TextDecoder('utf-8', { fatal: true });
    expect(v.outputs.map((output) => streaming.decode(Buffer.from(output.data, 'base64'), { stream: true })).join('') + streaming.decode()).toBe(text);
  });

  it('leaves no process behind when the hub closes, and records exits when the manager closes first', async () => {
    const first = await startHub();
    const terminal = await first.extension.terminals.spawn({ id: 'bg', project: 'p', file: '/bin/sh', args: ['-c', 'sleep 1000 & echo "bg=$!"; wait'] });
    const v = await Viewer.connect(first.url);
    await v.attach('bg');
    await waitFor(() => /bg=\d+/.test(v.text('bg')));
    const background = Number(/bg=(\d+)/.exec(v.text('bg'))![1]);
    expect(isAlive(terminal.pid) && isAlive(background)).toBe(true);
    await first.hub.close();
    await first.server.close();
    await waitGone([terminal.pid, background]);
    expect(v.notifications.some((n) => n.method === 'shutdown')).toBe(true);
    await v.closed;

    const second = await hubFor();
    const other = await second.extension.terminals.spawn({ id: 'sh', project: 'p', file: '/bin/sh', args: ['-c', 'echo ready; sleep 1000'] });
    await waitForOutput(other, 'ready');
    await second.extension.terminals.close();
    expect(other.exit).toEqual({ exitCode: 0, signal: 'SIGHUP' });
    expect(readSession(second, 'p', 'sh')).toMatchObject({ status: 'exited', exitCode: 129 });
    await expect(second.extension.terminals.spawn({ file: '/bin/true' })).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});

/** A session of `tasks/<project>` as the hub holds it (the stream is loaded: spawning read it). */
function readSession(test: TestHub, project: string, id: string) {
  return (test.hub.stream(`tasks/${project}`).state as TasksState).sessions[id];
}

import { ErrorCodes } from '@lockstep/core';
import type { Identity, StreamAction } from '@lockstep/server';
import { afterEach, describe, expect, it } from 'vitest';
import { detachedNotificationSchema } from './protocol.js';
import { waitFor } from './test/helpers.js';
import { Viewer, rejection, startHub, type TestHub } from './test/wsHarness.js';

/**
 * Live revocation of terminal attachments: when the application revokes a viewer's grant and calls
 * `hub.reauthorize`, the extension authorizes each attachment of the connections concerned again and
 * detaches the refused ones with `terminal.detached` — after which no output of the terminal reaches
 * them, while other viewers keep receiving it.
 */

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** Who may read which terminals (`terminal/<id>`); everyone may write. */
const readers = new Map<string, Set<string>>();
const authorize = (identity: Identity | undefined, stream: string, action: StreamAction) =>
  action === 'write' || (identity !== undefined && (readers.get(identity.id)?.has(stream) ?? false));
/** The extension's own focus watcher: allowed to read focus streams unless a test takes it back. */
const FOCUS_WATCHER = 'lockstep-pty';

async function hub(): Promise<TestHub> {
  const started = await startHub({}, { authenticate: ({ token }) => (token ? { id: token } : undefined), authorize });
  cleanup.push(() => started.close());
  return started;
}

async function viewer(test: TestHub, token: string): Promise<Viewer> {
  const connected = await Viewer.connect(test.url, { token, clientId: `${token}-viewer` });
  cleanup.push(() => connected.close());
  return connected;
}

describe('terminal attachments under revocation', () => {
  it('detaches a viewer whose read grant was revoked with terminal.detached; no output follows; others keep theirs', async () => {
    readers.set('alice', new Set(['terminal/echo']));
    readers.set('bob', new Set(['terminal/echo']));
    const test = await hub();
    // Echo off: the output is exactly what the program prints, one line per line of input.
    const terminal = await test.extension.terminals.spawn({
      id: 'echo',
      file: '/bin/sh',
      args: ['-c', 'stty -echo; while read line; do echo "got $line"; done'],
    });
    const alice = await viewer(test, 'alice');
    const bob = await viewer(test, 'bob');
    await alice.attach('echo');
    await bob.attach('echo');
    terminal.write('one\n');
    await waitFor(() => alice.text('echo').includes('got one') && bob.text('echo').includes('got one'), 'the first line');

    readers.get('alice')!.delete('terminal/echo');
    await test.hub.reauthorize();
    // What the hub sent before this answer has arrived before it.
    await alice.request('ping', {});
    const detached = alice.notifications.filter((notification) => notification.method === 'terminal.detached');
    expect(detached).toHaveLength(1);
    expect(detachedNotificationSchema.parse(detached[0]!.params)).toEqual({
      terminalId: 'echo',
      error: { code: ErrorCodes.FORBIDDEN, message: 'not allowed to read terminal/echo', data: { stream: 'terminal/echo', action: 'read' } },
    });
    expect(test.extension.attachments().map((attachment) => attachment.clientId)).toEqual(['bob-viewer']);

    const seen = alice.notifications.length;
    terminal.write('two\n');
    await waitFor(() => bob.text('echo').includes('got two'), 'the second line at bob');
    // Alice's socket has carried everything sent before this answer: nothing after the detach.
    await alice.request('ping', {});
    expect(alice.notifications.slice(seen)).toEqual([]);
    expect(alice.text('echo')).not.toContain('got two');
    // Attaching again asks again: refused.
    expect((await rejection(alice.attach('echo'))).code).toBe('FORBIDDEN');
    expect(test.errors).toEqual([]);
  });

  it('keeps the attachments the hook still allows, and re-checks only the connections the filter names', async () => {
    readers.set('alice', new Set(['terminal/keep', 'terminal/drop']));
    readers.set('carol', new Set(['terminal/drop']));
    const test = await hub();
    const keep = await test.extension.terminals.spawn({ id: 'keep', file: '/bin/sh', args: ['-c', 'stty -echo; while read line; do echo "keep $line"; done'] });
    const drop = await test.extension.terminals.spawn({ id: 'drop', file: '/bin/sh', args: ['-c', 'stty -echo; while read line; do echo "drop $line"; done'] });
    const alice = await viewer(test, 'alice');
    const carol = await viewer(test, 'carol');
    await alice.attach('keep');
    await alice.attach('drop');
    await carol.attach('drop');

    readers.get('alice')!.delete('terminal/drop');
    readers.get('carol')!.delete('terminal/drop');
    await test.hub.reauthorize((identity) => identity?.id === 'alice');
    await Promise.all([alice.request('ping', {}), carol.request('ping', {})]);
    expect(alice.notifications.filter((n) => n.method === 'terminal.detached').map((n) => (n.params as { terminalId: string }).terminalId)).toEqual(['drop']);
    // Carol was not re-checked (not named): still attached, though the hook would now refuse her.
    expect(carol.notifications.filter((n) => n.method === 'terminal.detached')).toEqual([]);

    keep.write('a\n');
    drop.write('b\n');
    await waitFor(() => alice.text('keep').includes('keep a') && carol.text('drop').includes('drop b'), 'output at alice and carol');
    await alice.request('ping', {});
    expect(alice.text('drop')).not.toContain('drop b');
  });

  it("tells onError when the focus watcher's own grant is taken back, and treats the project's terminals as focused", async () => {
    readers.set('alice', new Set(['terminal/focused']));
    readers.set(FOCUS_WATCHER, new Set(['focus/proj']));
    const test = await hub();
    await test.extension.terminals.spawn({ id: 'focused', project: 'proj', file: '/bin/sh', args: ['-c', 'read x'] });
    const alice = await viewer(test, 'alice');
    await alice.attach('focused');
    // Nobody is in the focus set: the viewer is throttled.
    expect(test.extension.attachments()[0]?.mode).not.toBe('live');

    readers.get(FOCUS_WATCHER)!.delete('focus/proj');
    await test.hub.reauthorize((identity) => identity?.id === FOCUS_WATCHER);
    await waitFor(() => test.errors.length > 0, 'the refusal reported');
    expect(test.errors.map(({ error, context }) => [(error as { code?: string }).code, context])).toEqual([['FORBIDDEN', 'following focus/proj']]);
    await waitFor(() => test.extension.attachments()[0]?.mode === 'live', 'the viewer treated as focused');
    // The viewer itself was not touched.
    expect(alice.notifications.filter((n) => n.method === 'terminal.detached')).toEqual([]);
  });
});

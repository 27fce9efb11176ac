import type { FocusState } from '@lockstep/core';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor, waitForOutput } from './test/helpers.js';
import { startHub, type TestHub } from './test/wsHarness.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function hubFor(): Promise<TestHub> {
  const started = await startHub();
  cleanup.push(() => started.close());
  return started;
}

async function focusEvents(test: TestHub, project: string) {
  const host = test.hub.stream(`focus/${project}`);
  await host.ready;
  return (await host.readSince(1, 1_000)).map((event) => [event.type, event.data]);
}

describe('focus of terminals that end', () => {
  it('is released when the program ends by itself, and kept when the manager closes (a shutdown)', async () => {
    const test = await hubFor();
    const { terminals } = test.extension;
    const done = await terminals.spawn({ id: 'done', project: 'p', file: '/bin/sh', args: ['-c', 'read line'] });
    const kept = await terminals.spawn({ id: 'kept', project: 'p', file: '/bin/sh', args: ['-c', 'echo ready; sleep 1000'] });
    await waitForOutput(kept, 'ready');
    await test.hub.execute({ id: 'grid', stream: 'focus/p', type: 'focus.setMany', payload: { sessionIds: ['done', 'kept'] } });

    // A program that ends on its own: its focus goes (SPEC §4.6, no ghost entries).
    done.write('\n');
    const focus = test.hub.stream('focus/p');
    await waitFor(() => (focus.state as FocusState).focused.length === 1, "done's focus released");
    expect(((await test.hub.read('focus/p')).state as FocusState).focused).toEqual(['kept']);
    const before = await test.hub.read('focus/p');

    // The manager closing (the hub shutting down) ends `kept` too, but its focus stays.
    await terminals.close();
    expect(kept.exit).toMatchObject({ signal: 'SIGHUP' });
    expect((await test.hub.read('tasks/p')).state).toMatchObject({ sessions: { kept: { status: 'exited' } } });
    expect(await test.hub.read('focus/p')).toEqual(before);
    expect(await focusEvents(test, 'p')).toEqual([
      ['focus.gained', expect.objectContaining({ sessionId: 'done' })],
      ['focus.gained', expect.objectContaining({ sessionId: 'kept' })],
      ['focus.lost', { sessionId: 'done', reason: 'closed' }],
    ]);
  });
});

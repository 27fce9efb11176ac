import { afterEach, describe, expect, it } from 'vitest';
import { startHub, type TestHub } from './test/wsHarness.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('recordSessions: false', () => {
  it('leaves the tasks stream to the application: nothing recorded at start or exit, the focus still released', async () => {
    const test: TestHub = await startHub({ recordSessions: false });
    cleanup.push(() => test.close());
    await test.hub.execute({ id: 'focus-1', stream: 'focus/p1', type: 'focus.set', payload: { sessionId: 'quiet' } });
    const terminal = await test.extension.terminals.spawn({ id: 'quiet', project: 'p1', file: '/bin/sh', args: ['-c', 'exit 3'] });
    expect(await terminal.exited).toEqual({ exitCode: 3 });
    // The exit's bookkeeping (here only the focus release) runs after `exited` resolves.
    const focusLog = async () => (await test.hub.store.read('focus/p1', 1, 10)).map((event) => [event.type, event.commandId]);
    for (let tries = 0; (await focusLog()).length < 2 && tries < 500; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(await focusLog()).toEqual([
      ['focus.gained', 'focus-1'],
      ['focus.lost', `pty:quiet:${terminal.runId}:unfocus`],
    ]);
    expect(await test.hub.store.read('tasks/p1', 1, 10)).toEqual([]);
    expect(test.errors).toEqual([]);
  });
});

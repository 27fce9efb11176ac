import { afterEach, describe, expect, it } from 'vitest';
import { isAlive } from './processTree.js';
import type { SpawnOptions } from './spawnPolicy.js';
import { waitFor, waitForOutput, waitGone } from './test/helpers.js';
import { Viewer, rejection, startHub } from './test/wsHarness.js';
import { SPAWN_CANCELLED, TerminalManager, WAITING_FOR_TERMINAL_SLOT, type TerminalManagerOptions } from './terminalManager.js';

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

function managerWith(options: TerminalManagerOptions): TerminalManager {
  const manager = new TerminalManager({ retainExitedMs: Infinity, ...options });
  cleanup.push(async () => {
    const pids = manager.list().map((terminal) => terminal.pid);
    await manager.close();
    await waitGone(pids);
  });
  return manager;
}

/** A shell that runs until told to exit (or is removed). */
const shell = (id: string): SpawnOptions => ({ id, file: '/bin/sh', args: [] });

describe('terminal slots', () => {
  it('queues spawns past maxTerminals (FIFO), starts the next when a slot frees, and drops a removed one from the line', async () => {
    const manager = managerWith({ maxTerminals: 2 });
    const a = await manager.spawn(shell('a'), { wait: true });
    await manager.spawn(shell('b'), { wait: true });
    const c = manager.spawn(shell('c'), { wait: true });
    const d = manager.spawn(shell('d'), { wait: true });
    // In line as soon as spawn returns, with their places.
    expect(manager.waiting().map(({ id, position }) => [id, position])).toEqual([
      ['c', 1],
      ['d', 2],
    ]);
    expect(manager.waitingFor('d')).toMatchObject({ id: 'd', position: 2, owner: undefined, since: expect.any(Number) });
    expect(manager.list().map((terminal) => terminal.id)).toEqual(['a', 'b']);

    // Without `wait`, a spawn past the limit is refused (and never jumps the line).
    const refused = await rejection(manager.spawn(shell('e')));
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', data: { reason: 'maxTerminals', maxTerminals: 2 } });
    // The same id cannot wait twice.
    expect(await rejection(manager.spawn(shell('c'), { wait: true }))).toMatchObject({ code: 'INVALID_PARAMS', data: { reason: 'terminal.waiting' } });

    // A slot frees: the first in line gets it.
    await manager.remove('a');
    await waitGone([a.pid]);
    const started = await c;
    expect(started.running).toBe(true);
    expect(manager.waiting().map(({ id, position }) => [id, position])).toEqual([['d', 1]]);

    // Removing a waiting spawn takes it out of the line; its spawn says why.
    await manager.remove('d');
    const cancelled = await rejection(d);
    expect(cancelled).toMatchObject({ code: 'UNAVAILABLE', data: { reason: SPAWN_CANCELLED, terminalId: 'd' } });
    expect(manager.waiting()).toEqual([]);
    expect(
      manager
        .list()
        .map((terminal) => terminal.id)
        .sort(),
    ).toEqual(['b', 'c']);
  });

  it('gives the slot of a terminal that exits to the next in line (the exited one is let go)', async () => {
    const manager = managerWith({ maxTerminals: 2 });
    const a = await manager.spawn(shell('a'));
    await manager.spawn(shell('b'));
    const c = manager.spawn(shell('c'), { wait: true });
    a.write('exit 3\n');
    expect(await a.exited).toEqual({ exitCode: 3 });
    const started = await c;
    expect(started.id).toBe('c');
    expect(manager.get('a')).toBeUndefined();
    expect(manager.size).toBe(2);
  });

  it('lets a new spawn take the slot of a retained exited terminal rather than refusing it', async () => {
    const manager = managerWith({ maxTerminals: 1 });
    const done = await manager.spawn({ id: 'done', file: '/bin/sh', args: ['-c', 'exit 0'] });
    await done.exited;
    await waitFor(() => manager.get('done') !== undefined && !manager.get('done')!.running);
    // `done` is retained for replay; a new terminal is worth more than its scrollback.
    const next = await manager.spawn(shell('next'));
    expect(next.running).toBe(true);
    expect(manager.list().map((terminal) => terminal.id)).toEqual(['next']);
  });

  it('caps terminals per identity (running and waiting), refusing at once rather than queueing', async () => {
    const manager = managerWith({ maxTerminals: 3, maxTerminalsPerIdentity: 2 });
    expect(manager.limits).toEqual({ maxTerminals: 3, maxTerminalsPerIdentity: 2 });
    const alice1 = await manager.spawn(shell('alice1'), { owner: 'alice' });
    await manager.spawn(shell('alice2'), { owner: 'alice' });
    const refused = await rejection(manager.spawn(shell('alice3'), { owner: 'alice', wait: true }));
    expect(refused).toMatchObject({ code: 'RATE_LIMITED', data: { reason: 'maxTerminalsPerIdentity', maxTerminalsPerIdentity: 2 } });
    expect(manager.waiting()).toEqual([]);

    // Another identity is not affected: it takes the last slot, then waits in line.
    await manager.spawn(shell('bob1'), { owner: 'bob' });
    const bob2 = manager.spawn(shell('bob2'), { owner: 'bob', wait: true });
    expect(manager.waitingFor('bob2')).toMatchObject({ position: 1, owner: 'bob' });
    // A waiting spawn counts: bob has one running and one waiting.
    expect(await rejection(manager.spawn(shell('bob3'), { owner: 'bob', wait: true }))).toMatchObject({ data: { reason: 'maxTerminalsPerIdentity' } });

    // An exited terminal no longer counts against its owner (and its slot goes to bob2).
    alice1.write('exit\n');
    await alice1.exited;
    expect((await bob2).id).toBe('bob2');
    const alice3 = manager.spawn(shell('alice3'), { owner: 'alice', wait: true });
    expect(manager.waitingFor('alice3')).toMatchObject({ position: 1, owner: 'alice' });
    await manager.remove('alice3');
    expect(await rejection(alice3)).toMatchObject({ data: { reason: SPAWN_CANCELLED } });
  });

  it('fails the waiting spawns when it closes', async () => {
    const manager = new TerminalManager({ maxTerminals: 1 });
    const only = await manager.spawn(shell('only'));
    const waiting = rejection(manager.spawn(shell('late'), { wait: true }));
    await manager.close();
    expect(await waiting).toMatchObject({ code: 'UNAVAILABLE', message: 'terminal manager is closing' });
    await waitGone([only.pid]);
    expect(isAlive(only.pid)).toBe(false);
  });
});

describe('terminal slots over WebSocket', () => {
  it('answers an attach to a terminal waiting for a slot with the reason and its place in line, then serves it once started', async () => {
    const test = await startHub({ maxTerminals: 1, retainExitedMs: Infinity });
    cleanup.push(() => test.close());
    const first = await test.extension.terminals.spawn(shell('first'));
    const second = test.extension.terminals.spawn(shell('second'), { wait: true });
    const viewer = await Viewer.connect(test.url);
    cleanup.push(() => viewer.close());

    const error = await rejection(viewer.attach('second'));
    expect(error.code).toBe('UNKNOWN_STREAM');
    expect(error.data).toEqual({ terminalId: 'second', reason: WAITING_FOR_TERMINAL_SLOT, position: 1, maxTerminals: 1 });
    expect(error.message).toMatch(/waiting for a free slot/);
    expect((await rejection(viewer.attach('nothing'))).data).toEqual({ terminalId: 'nothing' });

    first.write('exit\n');
    const terminal = await second;
    expect(await viewer.attach('second')).toMatchObject({ terminalId: 'second', runId: terminal.runId });
    await viewer.request('terminal.input', { terminalId: 'second', data: 'echo slot-$((20+22))\n' });
    await waitForOutput(terminal, 'slot-42');
  });
});

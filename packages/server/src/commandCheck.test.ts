import { builtInDomains, createMemoryLink, reject, LockstepError, type FocusState, type TasksState } from '@lockstep/core';
import { describe, expect, it } from 'vitest';
// The server package cannot depend on @lockstep/testkit (the testkit depends on the server).
import { FakeClock } from '../../testkit/src/fakeClock.js';
import { Hub, type HubOptions } from './hub.js';
import { MemoryEventStore } from './memoryEventStore.js';
import type { CommandCheck } from './commandPipeline.js';

/**
 * `checkCommand`: an application's rule that needs another stream, checked in the stream's pipeline.
 * The rule under test is the reference server's: a focused session must exist in `tasks/<key>`.
 */

function setup(options: Partial<HubOptions> = {}) {
  const clock = new FakeClock();
  const errors: Array<[unknown, string]> = [];
  const seen: CommandCheck[] = [];
  let hub: Hub;
  const sessionsMustExist = async (command: CommandCheck) => {
    seen.push(command);
    if (command.domain !== 'focus' || command.type !== 'focus.set') return;
    const { sessionId } = command.payload as { sessionId: string };
    const { state } = await hub.read(`tasks/${command.key}`);
    if (!Object.hasOwn((state as TasksState).sessions, sessionId)) reject('focus.unknownSession', `no session ${sessionId}`, { sessionIds: [sessionId] });
  };
  hub = new Hub({
    domains: builtInDomains,
    store: new MemoryEventStore(),
    clock,
    onError: (error, context) => errors.push([error, context]),
    checkCommand: sessionsMustExist,
    ...options,
  });
  return { hub, clock, errors, seen };
}

const focusSet = (id: string, sessionId: string) => ({ id, stream: 'focus/p1', type: 'focus.set', payload: { sessionId } });
const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => error as LockstepError,
  );

describe('hub checkCommand', () => {
  it('refuses a command the check rejects with its reason, records nothing, and lets the others through', async () => {
    const { hub, seen } = setup();
    await hub.execute({ id: 'c1', stream: 'tasks/p1', type: 'session.create', payload: { id: 's1' } });
    const ghost = await refusal(hub.execute(focusSet('f1', 'ghost')));
    expect(ghost).toBeInstanceOf(LockstepError);
    expect(ghost).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'focus.unknownSession', sessionIds: ['ghost'] } });
    expect(await hub.read('focus/p1')).toMatchObject({ version: 0, state: { focused: [] } });
    expect(await hub.execute(focusSet('f2', 's1'))).toMatchObject({ version: 1 });
    expect(((await hub.read('focus/p1')).state as FocusState).focused).toEqual(['s1']);
    // It saw every new command, whoever sent it, with the stream's parts.
    expect(seen.map((command) => [command.id, command.domain, command.key, command.type])).toEqual([
      ['c1', 'tasks', 'p1', 'session.create'],
      ['f1', 'focus', 'p1', 'focus.set'],
      ['f2', 'focus', 'p1', 'focus.set'],
    ]);
  });

  it('answers a retried id from the record without checking again, even once the check would pass', async () => {
    const { hub, seen } = setup();
    await refusal(hub.execute(focusSet('f1', 'late')));
    await hub.execute({ id: 'c1', stream: 'tasks/p1', type: 'session.create', payload: { id: 'late' } });
    const checks = seen.length;
    const again = await refusal(hub.execute(focusSet('f1', 'late')));
    expect(again).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'focus.unknownSession' } });
    expect(seen).toHaveLength(checks);
    // A new id is checked, and now passes.
    expect(await hub.execute(focusSet('f2', 'late'))).toMatchObject({ version: 1 });
  });

  it('validates the payload first: an invalid one is INVALID_PARAMS and never reaches the check', async () => {
    const { hub, seen } = setup();
    const invalid = await refusal(hub.execute({ id: 'f1', stream: 'focus/p1', type: 'focus.set', payload: { sessionId: 'has space' } }));
    expect(invalid).toMatchObject({ code: 'INVALID_PARAMS' });
    expect(seen).toEqual([]);
  });

  it("keeps the order of a stream's commands while a check is pending", async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const { hub } = setup({
      checkCommand: async (command) => {
        if (command.type === 'focus.set') await gate;
      },
    });
    const order: string[] = [];
    const set = hub.execute(focusSet('f1', 's1')).then(() => order.push('set'));
    const blur = hub.execute({ id: 'f2', stream: 'focus/p1', type: 'focus.blur', payload: { sessionId: 's1' } }).then(() => order.push('blur'));
    await new Promise((resolve) => setImmediate(resolve));
    expect(order).toEqual([]);
    release();
    await Promise.all([set, blur]);
    expect(order).toEqual(['set', 'blur']);
    // The blur came after the focus, as sent: nothing is focused.
    expect(await hub.read('focus/p1')).toMatchObject({ version: 2, state: { focused: [] } });
  });

  it('does not record a refusal that is not a rejection: UNAVAILABLE as thrown, a bug as INTERNAL_ERROR reported to onError', async () => {
    let failure: Error | undefined = new LockstepError('UNAVAILABLE', 'tasks are not loaded');
    const { hub, errors } = setup({
      checkCommand: () => {
        if (failure) throw failure;
      },
    });
    expect(await refusal(hub.execute(focusSet('f1', 's1')))).toMatchObject({ code: 'UNAVAILABLE', message: 'tasks are not loaded' });
    failure = new TypeError('oops');
    expect(await refusal(hub.execute(focusSet('f2', 's1')))).toMatchObject({ code: 'INTERNAL_ERROR' });
    expect(errors).toEqual([[failure, 'checking focus.set on focus/p1']]);
    // Neither was recorded: the same ids are checked again, and pass.
    failure = undefined;
    expect(await hub.execute(focusSet('f1', 's1'))).toMatchObject({ version: 1 });
    expect(await hub.execute(focusSet('f2', 's2'))).toMatchObject({ version: 2 });
  });

  it("checks a connection's commands too: the client gets the rejection with its reason", async () => {
    const { hub, clock } = setup();
    const link = createMemoryLink({ clock });
    hub.accept(link.server);
    const answers = new Map<number, { result?: unknown; error?: { code: number; message: string; data?: any } }>();
    link.client.frames.subscribe((frame) => {
      const message = JSON.parse(frame as string) as { id?: number; result?: unknown; error?: { code: number; message: string } };
      if (typeof message.id === 'number') answers.set(message.id, message);
    });
    const ask = async (id: number, method: string, params: unknown) => {
      link.client.send(JSON.stringify({ jsonrpc: '2.0', id, method, params }));
      for (let turn = 0; turn < 100 && !answers.has(id); turn++) await clock.flush();
      return answers.get(id);
    };
    expect((await ask(1, 'hello', { protocol: 1 }))?.result).toBeDefined();
    const answer = await ask(2, 'command', focusSet('f1', 'ghost'));
    expect(LockstepError.fromWire(answer!.error!)).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'focus.unknownSession' } });
    expect((await hub.read('focus/p1')).version).toBe(0);
    link.client.close('done');
  });
});

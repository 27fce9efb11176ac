import { StoreConflictError, type Commit, type EventStore, type Snapshot, type StoredEvent, type StoredRefusal } from '@lockstep/server';
import { suiteRunner, type TestRunnerAdapter } from './runner.js';

/** Makes a new, empty store for one case (for a database: a fresh schema or a fresh database). */
export type EventStoreFactory = () => Promise<EventStore> | EventStore;

export interface EventStoreConformanceOptions {
  /**
   * Closes the store and opens it again on the same storage (a file store's directory, a
   * PostgreSQL schema), to check that everything survives a restart. Stores without durable
   * storage (memory) leave it out, and the durability cases are not declared.
   */
  reopen?: (store: EventStore) => Promise<EventStore>;
  /**
   * Whether `compact` really drops the events it may drop. Default true. A store that keeps every
   * event sets false: the case checking the exact cut is then left out, while the cases
   * checking what must never be dropped still run.
   */
  compacts?: boolean;
  /** Timeout of each case in milliseconds. Default: the vitest configuration's. */
  timeoutMs?: number;
  /** The test runner's functions (see {@link TestRunnerAdapter}). Default: vitest's. */
  runner?: TestRunnerAdapter;
  /**
   * Whether the store has a presence registry (`store.presence`), for several hubs. Default false:
   * the presence cases are not declared.
   */
  presence?: boolean;
}

const T0 = Date.UTC(2026, 0, 1);

/** One event per version in `[from, from + count)`, attributed to `commandId`. */
function events(commandId: string, from: number, count: number, extra: Partial<StoredEvent> = {}): StoredEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    version: from + i,
    type: 'counter.added',
    data: { by: from + i, note: `from ${commandId}` },
    time: T0 + from + i,
    commandId,
    ...extra,
  }));
}

function commit(commandId: string, eventList: StoredEvent[], fingerprint = `fp:${commandId}`): Commit {
  return { commandId, fingerprint, events: eventList };
}

/** A refused command: no events, and why. */
function refusal(commandId: string, code: StoredRefusal['code'] = 'COMMAND_REJECTED', data?: unknown): Commit {
  const stored: StoredRefusal = { code, message: `${commandId} was refused` };
  if (data !== undefined) stored.data = data;
  return { commandId, fingerprint: `fp:${commandId}`, events: [], refusal: stored };
}

/** A store may return an omitted `schemaVersion` as 1, which means the same. */
function normalized(list: readonly StoredEvent[]): StoredEvent[] {
  return list.map((event) => ({ ...event, schemaVersion: event.schemaVersion ?? 1 }));
}

function versions(list: readonly StoredEvent[]): number[] {
  return list.map((event) => event.version);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/**
 * Declares a vitest suite that checks an {@link EventStore} against the contract in
 * `eventStore.ts`: optimistic concurrency, atomic multi-commit appends, command-id deduplication
 * across streams, snapshots that share nothing with the caller, compaction bounded by the snapshot,
 * and, given `reopen`, durability of all of it across a restart.
 *
 * ```ts
 * describeEventStoreConformance('file event store', () => openFileStore(freshDir()), {
 *   reopen: async (store) => { await store.close(); return openFileStore(dirOf(store)); },
 * });
 * ```
 */
export function describeEventStoreConformance(name: string, factory: EventStoreFactory, options: EventStoreConformanceOptions = {}): void {
  const { reopen } = options;
  const compacts = options.compacts ?? true;
  const { describe, it, expect, onFinished, caseIf } = suiteRunner(options.runner);
  const ifCompacts = caseIf(compacts);
  const suiteOptions = options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs };

  /** A new store, closed when the case finishes (the latest one, after reopens). */
  async function open(): Promise<{ store: EventStore; reopen(): Promise<EventStore> }> {
    const handle = {
      store: await factory(),
      async reopen(): Promise<EventStore> {
        if (!reopen) throw new Error('no reopen option was given');
        handle.store = await reopen(handle.store);
        return handle.store;
      },
    };
    onFinished(() => handle.store.close());
    return handle;
  }

  /** Fails the case when any of `commandIds` is known to the store. */
  async function expectUnknownCommands(store: EventStore, commandIds: string[]): Promise<void> {
    expect([...(await store.findCommands(commandIds)).keys()]).toEqual([]);
  }

  describe(name, suiteOptions, () => {
    describe('appending and reading', () => {
      it('an unknown stream is at head 0 with nothing retained', async () => {
        const { store } = await open();
        expect(await store.info('tasks/unknown')).toEqual({ head: 0, oldestRetained: 1 });
        expect(await store.read('tasks/unknown', 1, 100)).toEqual([]);
        expect(await store.loadSnapshot('tasks/unknown')).toBeUndefined();
        expect(await store.streams()).toEqual([]);
      });

      it('has an epoch, and a new store has a new one', async () => {
        const first = (await open()).store;
        const second = (await open()).store;
        expect(typeof first.epoch).toBe('string');
        expect(first.epoch.length).toBeGreaterThan(0);
        expect(second.epoch).not.toBe(first.epoch);
      });

      it('returns appended events in version order, with their schemaVersion', async () => {
        const { store } = await open();
        const first = [...events('c1', 1, 1), ...events('c1', 2, 1, { schemaVersion: 2 })];
        const second = events('c2', 3, 2, { schemaVersion: 3 });
        await store.append('tasks/a', 0, [commit('c1', first), commit('c2', second)]);
        expect(await store.info('tasks/a')).toEqual({ head: 4, oldestRetained: 1 });
        const read = await store.read('tasks/a', 1, 100);
        expect(versions(read)).toEqual([1, 2, 3, 4]);
        expect(normalized(read)).toEqual(normalized([...first, ...second]));
        expect(read.map((event) => event.schemaVersion ?? 1)).toEqual([1, 2, 3, 3]);
        await store.append('tasks/a', 4, [commit('c3', events('c3', 5, 1))]);
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual([1, 2, 3, 4, 5]);
      });

      it('reads from the middle, at most limit events', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 10))]);
        expect(versions(await store.read('tasks/a', 4, 3))).toEqual([4, 5, 6]);
        expect(versions(await store.read('tasks/a', 8, 100))).toEqual([8, 9, 10]);
        expect(versions(await store.read('tasks/a', 10, 1))).toEqual([10]);
        expect(await store.read('tasks/a', 11, 5)).toEqual([]);
        expect(await store.read('tasks/a', 1, 0)).toEqual([]);
      });

      it('lists every stream it holds', async () => {
        const { store } = await open();
        const names = ['tasks/p1', 'focus/p1', 'orchestration/default'];
        for (const [i, stream] of names.entries()) await store.append(stream, 0, [commit(`c${i}`, events(`c${i}`, 1, 1))]);
        expect([...(await store.streams())].sort()).toEqual([...names].sort());
      });

      it('keeps independent versions for many streams appended to in interleaved order', async () => {
        const { store } = await open();
        const streams = Array.from({ length: 12 }, (_, i) => `tasks/p${i}`);
        const rounds = 15;
        for (let round = 0; round < rounds; round++) {
          // All streams at once: appends to different streams never conflict.
          await Promise.all(
            streams.map((stream, s) => {
              const id = `c-${s}-${round}`;
              return store.append(stream, round, [commit(id, events(id, round + 1, 1))]);
            }),
          );
        }
        for (const [s, stream] of streams.entries()) {
          expect(await store.info(stream)).toEqual({ head: rounds, oldestRetained: 1 });
          const read = await store.read(stream, 1, 1_000);
          expect(versions(read)).toEqual(range(1, rounds));
          expect(read.map((event) => event.commandId)).toEqual(range(0, rounds - 1).map((round) => `c-${s}-${round}`));
        }
        const records = await store.findCommands([`c-3-0`, `c-11-14`]);
        expect(records.get('c-3-0')).toEqual({ commandId: 'c-3-0', stream: 'tasks/p3', fingerprint: 'fp:c-3-0', version: 1 });
        expect(records.get('c-11-14')).toEqual({ commandId: 'c-11-14', stream: 'tasks/p11', fingerprint: 'fp:c-11-14', version: 15 });
      });
    });

    describe('concurrency and atomicity', () => {
      it('rejects an append at the wrong expectedHead with StoreConflictError and changes nothing', async () => {
        const { store } = await open();
        await expect(store.append('tasks/new', 1, [commit('x0', events('x0', 2, 1))])).rejects.toBeInstanceOf(StoreConflictError);
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 3))]);
        for (const expectedHead of [0, 2, 4]) {
          const id = `x-${expectedHead}`;
          const attempt = store.append('tasks/a', expectedHead, [commit(id, events(id, expectedHead + 1, 1))]);
          await expect(attempt).rejects.toBeInstanceOf(StoreConflictError);
          await expect(attempt).rejects.toMatchObject({ stream: 'tasks/a', expected: expectedHead, actual: 3 });
        }
        expect(await store.info('tasks/a')).toEqual({ head: 3, oldestRetained: 1 });
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual([1, 2, 3]);
        expect((await store.read('tasks/a', 1, 100)).map((event) => event.commandId)).toEqual(['c1', 'c1', 'c1']);
        await expectUnknownCommands(store, ['x0', 'x-0', 'x-2', 'x-4']);
        expect(await store.info('tasks/new')).toEqual({ head: 0, oldestRetained: 1 });
        expect(await store.streams()).toEqual(['tasks/a']);
      });

      it('lets exactly one of several concurrent appends at the same head win', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c0', events('c0', 1, 1))]);
        const ids = ['w0', 'w1', 'w2', 'w3', 'w4'];
        const outcomes = await Promise.allSettled(ids.map((id) => store.append('tasks/a', 1, [commit(id, events(id, 2, 2))])));
        const winners = ids.filter((_, i) => outcomes[i]!.status === 'fulfilled');
        expect(winners).toHaveLength(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(StoreConflictError);
        }
        const winner = winners[0]!;
        expect(await store.info('tasks/a')).toEqual({ head: 3, oldestRetained: 1 });
        expect((await store.read('tasks/a', 1, 100)).map((event) => event.commandId)).toEqual(['c0', winner, winner]);
        expect([...(await store.findCommands(ids)).keys()]).toEqual([winner]);
      });

      it('appends nothing of a call when one commit has an event at the wrong version', async () => {
        const { store } = await open();
        // A gap in the second commit of a call on a new stream.
        await expect(store.append('tasks/a', 0, [commit('ok1', events('ok1', 1, 2)), commit('gap', events('gap', 4, 1))])).rejects.toThrow();
        expect(await store.info('tasks/a')).toEqual({ head: 0, oldestRetained: 1 });
        expect(await store.read('tasks/a', 1, 100)).toEqual([]);
        await expectUnknownCommands(store, ['ok1', 'gap']);
        expect(await store.streams()).toEqual([]);

        // Versions that restart below the head, on an existing stream.
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 2))]);
        await expect(store.append('tasks/a', 2, [commit('ok2', events('ok2', 3, 1)), commit('behind', events('behind', 3, 1))])).rejects.toThrow();
        // Versions that do not start at expectedHead + 1.
        await expect(store.append('tasks/a', 2, [commit('ahead', events('ahead', 4, 1))])).rejects.toThrow();
        expect(await store.info('tasks/a')).toEqual({ head: 2, oldestRetained: 1 });
        expect((await store.read('tasks/a', 1, 100)).map((event) => event.commandId)).toEqual(['c1', 'c1']);
        await expectUnknownCommands(store, ['ok2', 'behind', 'ahead']);
      });

      it('appends nothing of a call when one commit reuses a command id', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('used', events('used', 1, 1))]);
        await expect(
          store.append('tasks/a', 1, [commit('fresh', events('fresh', 2, 1)), commit('used', events('used', 3, 1), 'fp:other')]),
        ).rejects.toMatchObject({ name: 'StoreConflictError', commandId: 'used' });
        expect(await store.info('tasks/a')).toEqual({ head: 1, oldestRetained: 1 });
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual([1]);
        await expectUnknownCommands(store, ['fresh']);
        expect((await store.findCommands(['used'])).get('used')).toEqual({
          commandId: 'used',
          stream: 'tasks/a',
          fingerprint: 'fp:used',
          version: 1,
        });
      });

      it('rejects a call that repeats a command id within itself', async () => {
        const { store } = await open();
        await expect(store.append('tasks/a', 0, [commit('twice', events('twice', 1, 1)), commit('twice', events('twice', 2, 1))])).rejects.toThrow();
        expect(await store.info('tasks/a')).toEqual({ head: 0, oldestRetained: 1 });
        await expectUnknownCommands(store, ['twice']);
      });

      it('keeps command ids unique across streams', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('shared', events('shared', 1, 1))]);
        // A conflict like a moved head: the writer catches up and finds the command as a duplicate.
        await expect(store.append('tasks/b', 0, [commit('shared', events('shared', 1, 1))])).rejects.toBeInstanceOf(StoreConflictError);
        expect(await store.info('tasks/b')).toEqual({ head: 0, oldestRetained: 1 });
        expect(await store.streams()).toEqual(['tasks/a']);
        expect((await store.findCommands(['shared'])).get('shared')).toMatchObject({ stream: 'tasks/a', version: 1 });
      });
    });

    describe('command records', () => {
      it('finds only the command ids it knows, with stream, fingerprint and version', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('a1', events('a1', 1, 2)), commit('a2', events('a2', 3, 1), 'fp:custom')]);
        await store.append('focus/a', 0, [commit('f1', events('f1', 1, 1))]);
        const found = await store.findCommands(['a1', 'nope', 'f1', 'a2', 'also-nope']);
        expect([...found.keys()].sort()).toEqual(['a1', 'a2', 'f1']);
        expect(found.get('a1')).toEqual({ commandId: 'a1', stream: 'tasks/a', fingerprint: 'fp:a1', version: 2 });
        expect(found.get('a2')).toEqual({ commandId: 'a2', stream: 'tasks/a', fingerprint: 'fp:custom', version: 3 });
        expect(found.get('f1')).toEqual({ commandId: 'f1', stream: 'focus/a', fingerprint: 'fp:f1', version: 1 });
        expect((await store.findCommands([])).size).toBe(0);
        expect((await store.findCommands(['nope'])).size).toBe(0);
      });

      it('records the command id of a commit without events, at the head of that moment', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('empty0', [])]);
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 2))]);
        await store.append('tasks/a', 2, [commit('empty2', [])]);
        expect(await store.info('tasks/a')).toEqual({ head: 2, oldestRetained: 1 });
        // Mixed in a call: the empty commit's version is the head after the commit before it.
        await store.append('tasks/a', 2, [commit('c3', events('c3', 3, 1)), commit('empty3', []), commit('c4', events('c4', 4, 1))]);
        expect(await store.info('tasks/a')).toEqual({ head: 4, oldestRetained: 1 });
        const found = await store.findCommands(['empty0', 'empty2', 'empty3', 'c3', 'c4']);
        expect(found.get('empty0')).toEqual({ commandId: 'empty0', stream: 'tasks/a', fingerprint: 'fp:empty0', version: 0 });
        expect(found.get('empty2')).toMatchObject({ stream: 'tasks/a', version: 2 });
        expect(found.get('c3')).toMatchObject({ version: 3 });
        expect(found.get('empty3')).toMatchObject({ stream: 'tasks/a', version: 3 });
        expect(found.get('c4')).toMatchObject({ version: 4 });
        // An empty commit's id is taken like any other.
        await expect(store.append('tasks/a', 4, [commit('empty2', events('empty2', 5, 1))])).rejects.toThrow();
        expect(await store.info('tasks/a')).toEqual({ head: 4, oldestRetained: 1 });
      });
    });

    describe('refusals', () => {
      it('records a refused command with its refusal, at the head it was refused at', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 2))]);
        await store.append('tasks/a', 2, [
          refusal('no1', 'COMMAND_REJECTED', { reason: 'exists', nested: { n: 1 } }),
          commit('c2', events('c2', 3, 1)),
          refusal('no2', 'VERSION_CONFLICT'),
        ]);
        expect(await store.info('tasks/a')).toEqual({ head: 3, oldestRetained: 1 });
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual([1, 2, 3]);
        const found = await store.findCommands(['no1', 'no2', 'c2']);
        expect(found.get('no1')).toEqual({
          commandId: 'no1',
          stream: 'tasks/a',
          fingerprint: 'fp:no1',
          version: 2,
          refusal: { code: 'COMMAND_REJECTED', message: 'no1 was refused', data: { reason: 'exists', nested: { n: 1 } } },
        });
        expect(found.get('no2')).toEqual({
          commandId: 'no2',
          stream: 'tasks/a',
          fingerprint: 'fp:no2',
          version: 3,
          refusal: { code: 'VERSION_CONFLICT', message: 'no2 was refused' },
        });
        expect(found.get('c2')).toEqual({ commandId: 'c2', stream: 'tasks/a', fingerprint: 'fp:c2', version: 3 });
      });

      it('refuses to record a refusal decided on a head that has moved, and records nothing of it', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 1))]);
        await expect(store.append('tasks/a', 0, [refusal('stale')])).rejects.toBeInstanceOf(StoreConflictError);
        await expect(store.append('tasks/new', 3, [refusal('ahead')])).rejects.toBeInstanceOf(StoreConflictError);
        await expectUnknownCommands(store, ['stale', 'ahead']);
        expect(await store.info('tasks/a')).toEqual({ head: 1, oldestRetained: 1 });
      });

      it('lets a refusal and an append of the same command id race: exactly one is recorded', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c0', events('c0', 1, 1))]);
        // Two hubs decided the same command at head 1: one applied it, the other refused it.
        const outcomes = await Promise.allSettled([
          store.append('tasks/a', 1, [commit('raced', events('raced', 2, 1))]),
          store.append('tasks/a', 1, [refusal('raced')]),
        ]);
        const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const outcome of outcomes) {
          if (outcome.status === 'rejected') expect(outcome.reason).toBeInstanceOf(StoreConflictError);
        }
        const record = (await store.findCommands(['raced'])).get('raced');
        const { head } = await store.info('tasks/a');
        // Whichever won, the store's answer and its head agree.
        if (record?.refusal) expect(head).toBe(1);
        else expect(record).toEqual({ commandId: 'raced', stream: 'tasks/a', fingerprint: 'fp:raced', version: 2 });
        if (!record?.refusal) expect(head).toBe(2);
      });

      it('takes a refused command id like any other', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [refusal('refused')]);
        await expect(store.append('tasks/a', 0, [commit('refused', events('refused', 1, 1))])).rejects.toMatchObject({
          name: 'StoreConflictError',
          commandId: 'refused',
        });
        expect(await store.info('tasks/a')).toEqual({ head: 0, oldestRetained: 1 });
        expect((await store.findCommands(['refused'])).get('refused')?.refusal?.code).toBe('COMMAND_REJECTED');
      });
    });

    describe('snapshots and compaction', () => {
      it('saves and loads snapshots per stream, the latest replacing the earlier', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 5))]);
        await store.append('tasks/b', 0, [commit('c2', events('c2', 1, 1))]);
        const early: Snapshot = { stream: 'tasks/a', version: 2, state: { tasks: { t1: { title: 'one', tags: ['x'] } }, count: 1 } };
        const late: Snapshot = { stream: 'tasks/a', version: 5, state: { tasks: {}, count: 0, nothing: null } };
        const other: Snapshot = { stream: 'tasks/b', version: 1, state: [1, 'two', { three: 3 }] };
        await store.saveSnapshot(early);
        expect(await store.loadSnapshot('tasks/a')).toEqual(early);
        await store.saveSnapshot(late);
        await store.saveSnapshot(other);
        expect(await store.loadSnapshot('tasks/a')).toEqual(late);
        expect(await store.loadSnapshot('tasks/b')).toEqual(other);
        expect(await store.loadSnapshot('tasks/c')).toBeUndefined();
      });

      it('loads a snapshot saved with its JSON text as that state, without the text', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 3))]);
        const state = { tasks: { t1: { title: 'one "quoted"', tags: ['x'] } }, count: 1 };
        await store.saveSnapshot({ stream: 'tasks/a', version: 3, state, json: JSON.stringify(state) });
        expect(await store.loadSnapshot('tasks/a')).toEqual({ stream: 'tasks/a', version: 3, state });
      });

      it('keeps a saved snapshot apart from the objects of the caller', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 3))]);
        const state = { tasks: { t1: { title: 'one', tags: ['x'] } }, count: 1 };
        const snapshot: Snapshot = { stream: 'tasks/a', version: 3, state };
        await store.saveSnapshot(snapshot);
        state.tasks.t1.title = 'changed after saving';
        state.tasks.t1.tags.push('y');
        state.count = 99;
        snapshot.version = 1;
        const expected = { stream: 'tasks/a', version: 3, state: { tasks: { t1: { title: 'one', tags: ['x'] } }, count: 1 } };
        const loaded = await store.loadSnapshot('tasks/a');
        expect(loaded).toEqual(expected);
        // Changing what was loaded does not change what is stored either.
        (loaded!.state as typeof state).tasks.t1.title = 'changed after loading';
        loaded!.version = 2;
        expect(await store.loadSnapshot('tasks/a')).toEqual(expected);
      });

      ifCompacts('compacts below before, but never past the snapshot', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 10))]);
        await store.saveSnapshot({ stream: 'tasks/a', version: 4, state: { n: 4 } });
        // The snapshot bounds the cut: events after version 4 are still needed.
        await store.compact('tasks/a', 8);
        expect(await store.info('tasks/a')).toEqual({ head: 10, oldestRetained: 5 });
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual(range(5, 10));
        expect(versions(await store.read('tasks/a', 5, 2))).toEqual([5, 6]);
        expect(versions(await store.read('tasks/a', 2, 2))).toEqual([5, 6]);
        // `before` bounds the cut.
        await store.saveSnapshot({ stream: 'tasks/a', version: 9, state: { n: 9 } });
        await store.compact('tasks/a', 7);
        expect(await store.info('tasks/a')).toEqual({ head: 10, oldestRetained: 7 });
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual(range(7, 10));
        // Everything up to the head may go once a snapshot covers it.
        await store.saveSnapshot({ stream: 'tasks/a', version: 10, state: { n: 10 } });
        await store.compact('tasks/a', 11);
        expect(await store.info('tasks/a')).toEqual({ head: 10, oldestRetained: 11 });
        expect(await store.read('tasks/a', 1, 100)).toEqual([]);
        // Appending goes on from the head.
        await store.append('tasks/a', 10, [commit('c2', events('c2', 11, 1))]);
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual([11]);
      });

      it('never drops events that no snapshot covers, nor moves oldestRetained back', async () => {
        const { store } = await open();
        await store.append('tasks/a', 0, [commit('c1', events('c1', 1, 10))]);
        await store.append('tasks/b', 0, [commit('c2', events('c2', 1, 3))]);
        // No snapshot: nothing may go.
        await store.compact('tasks/a', 6);
        expect(await store.info('tasks/a')).toEqual({ head: 10, oldestRetained: 1 });
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual(range(1, 10));
        // Another stream's snapshot does not count.
        await store.saveSnapshot({ stream: 'tasks/b', version: 3, state: {} });
        await store.compact('tasks/a', 6);
        expect(await store.info('tasks/a')).toEqual({ head: 10, oldestRetained: 1 });

        await store.saveSnapshot({ stream: 'tasks/a', version: 8, state: { n: 8 } });
        await store.compact('tasks/a', 6);
        const afterCut = await store.info('tasks/a');
        expect(afterCut.head).toBe(10);
        expect(afterCut.oldestRetained).toBeGreaterThanOrEqual(1);
        expect(afterCut.oldestRetained).toBeLessThanOrEqual(6);
        // An older snapshot saved later, and a compaction below what is already gone, keep what is left.
        // A store may keep the snapshot saved last (version 2: nothing past 6 may go then) or the
        // newest one (version 8, as stores shared by several hubs do: up to 9 may go).
        await store.saveSnapshot({ stream: 'tasks/a', version: 2, state: { n: 2 } });
        await store.compact('tasks/a', 10);
        await store.compact('tasks/a', 1);
        const info = await store.info('tasks/a');
        const kept = await store.loadSnapshot('tasks/a');
        expect([2, 8]).toContain(kept?.version);
        expect(info.head).toBe(10);
        expect(info.oldestRetained).toBeGreaterThanOrEqual(afterCut.oldestRetained);
        expect(info.oldestRetained).toBeLessThanOrEqual(kept?.version === 8 ? 9 : 6);
        // Whatever is retained reads back contiguously from oldestRetained, also when asked from below it.
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual(range(info.oldestRetained, 10));
        expect(versions(await store.read('tasks/a', info.oldestRetained, 2))).toEqual([info.oldestRetained, info.oldestRetained + 1]);
        // Compacting an unknown stream changes nothing.
        await store.compact('tasks/unknown', 5);
        expect(await store.info('tasks/unknown')).toEqual({ head: 0, oldestRetained: 1 });
      });
    });

    (options.presence ? describe : () => {})('presence of lease holders', () => {
      const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

      it('tells other hubs which holders a hub has, never the hub itself', async () => {
        const { store } = await open();
        const presence = store.presence!;
        expect(presence).toBeDefined();
        await presence.enter('hub-a', 'ide-1', Date.now());
        expect(await presence.isPresentElsewhere('hub-b', 'ide-1', 60_000, Date.now())).toBe(true);
        expect(await presence.isPresentElsewhere('hub-a', 'ide-1', 60_000, Date.now())).toBe(false);
        expect(await presence.isPresentElsewhere('hub-b', 'ide-2', 60_000, Date.now())).toBe(false);
        await presence.enter('hub-a', 'ide-1', Date.now());
        await presence.enter('hub-c', 'ide-1', Date.now());
        await presence.leave('hub-a', 'ide-1');
        expect(await presence.isPresentElsewhere('hub-b', 'ide-1', 60_000, Date.now())).toBe(true);
        await presence.leave('hub-c', 'ide-1');
        expect(await presence.isPresentElsewhere('hub-b', 'ide-1', 60_000, Date.now())).toBe(false);
        await presence.leave('hub-c', 'never-entered');
      });

      it('stops counting the holders of a hub whose heartbeat is older than the ttl, until it beats again', async () => {
        const { store } = await open();
        const presence = store.presence!;
        await presence.enter('hub-a', 'ide-1', Date.now());
        await sleep(250);
        expect(await presence.isPresentElsewhere('hub-b', 'ide-1', 100, Date.now())).toBe(false);
        expect(await presence.isPresentElsewhere('hub-b', 'ide-1', 60_000, Date.now())).toBe(true);
        await presence.heartbeat('hub-a', Date.now());
        expect(await presence.isPresentElsewhere('hub-b', 'ide-1', 100, Date.now())).toBe(true);
      });

      it('forgets every holder of a hub that shut down', async () => {
        const { store } = await open();
        const presence = store.presence!;
        await presence.enter('hub-a', 'ide-1', Date.now());
        await presence.enter('hub-a', 'ide-2', Date.now());
        await presence.enter('hub-b', 'ide-2', Date.now());
        await presence.forget('hub-a');
        expect(await presence.isPresentElsewhere('hub-c', 'ide-1', 60_000, Date.now())).toBe(false);
        expect(await presence.isPresentElsewhere('hub-c', 'ide-2', 60_000, Date.now())).toBe(true);
        await presence.forget('hub-a');
        // A forgotten hub that is in fact alive comes back with its next holder.
        await presence.enter('hub-a', 'ide-3', Date.now());
        expect(await presence.isPresentElsewhere('hub-c', 'ide-3', 60_000, Date.now())).toBe(true);
      });
    });

    // Stores without durable storage have nothing to check here: the block is not declared at all.
    (reopen ? describe : () => {})('durability across a reopen', () => {
      it('keeps events, heads, streams and the epoch', async () => {
        const handle = await open();
        const { epoch } = handle.store;
        await handle.store.append('tasks/a', 0, [commit('c1', events('c1', 1, 2, { schemaVersion: 2 })), commit('c2', events('c2', 3, 1))]);
        await handle.store.append('focus/a', 0, [commit('f1', events('f1', 1, 1))]);
        const before = await handle.store.read('tasks/a', 1, 100);
        const store = await handle.reopen();
        expect(store.epoch).toBe(epoch);
        expect(await store.info('tasks/a')).toEqual({ head: 3, oldestRetained: 1 });
        expect(await store.info('focus/a')).toEqual({ head: 1, oldestRetained: 1 });
        expect(normalized(await store.read('tasks/a', 1, 100))).toEqual(normalized(before));
        expect((await store.read('tasks/a', 1, 100)).map((event) => event.schemaVersion ?? 1)).toEqual([2, 2, 1]);
        expect([...(await store.streams())].sort()).toEqual(['focus/a', 'tasks/a']);
        // Writing goes on from the head, with the same concurrency check.
        await expect(store.append('tasks/a', 2, [commit('late', events('late', 3, 1))])).rejects.toBeInstanceOf(StoreConflictError);
        await store.append('tasks/a', 3, [commit('c3', events('c3', 4, 1))]);
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual([1, 2, 3, 4]);
        const again = await handle.reopen();
        expect(again.epoch).toBe(epoch);
        expect(await again.info('tasks/a')).toEqual({ head: 4, oldestRetained: 1 });
      });

      it('keeps command records, so deduplication holds after a restart', async () => {
        const handle = await open();
        await handle.store.append('tasks/a', 0, [commit('c1', events('c1', 1, 2)), commit('empty', [])]);
        await handle.store.append('focus/a', 0, [commit('f1', events('f1', 1, 1), 'fp:focus')]);
        const store = await handle.reopen();
        const found = await store.findCommands(['c1', 'empty', 'f1', 'unknown']);
        expect([...found.keys()].sort()).toEqual(['c1', 'empty', 'f1']);
        expect(found.get('c1')).toEqual({ commandId: 'c1', stream: 'tasks/a', fingerprint: 'fp:c1', version: 2 });
        expect(found.get('empty')).toEqual({ commandId: 'empty', stream: 'tasks/a', fingerprint: 'fp:empty', version: 2 });
        expect(found.get('f1')).toEqual({ commandId: 'f1', stream: 'focus/a', fingerprint: 'fp:focus', version: 1 });
        await expect(store.append('tasks/a', 2, [commit('f1', events('f1', 3, 1))])).rejects.toThrow();
        await expect(store.append('tasks/b', 0, [commit('empty', [])])).rejects.toThrow();
        expect(await store.info('tasks/a')).toEqual({ head: 2, oldestRetained: 1 });
      });

      it('keeps refusals, so a refused command id gets the same answer after a restart', async () => {
        const handle = await open();
        await handle.store.append('tasks/a', 0, [commit('c1', events('c1', 1, 1)), refusal('no', 'COMMAND_REJECTED', { why: 'because' })]);
        const store = await handle.reopen();
        expect((await store.findCommands(['no'])).get('no')).toEqual({
          commandId: 'no',
          stream: 'tasks/a',
          fingerprint: 'fp:no',
          version: 1,
          refusal: { code: 'COMMAND_REJECTED', message: 'no was refused', data: { why: 'because' } },
        });
        expect(await store.info('tasks/a')).toEqual({ head: 1, oldestRetained: 1 });
      });

      it('keeps snapshots and compaction', async () => {
        const handle = await open();
        await handle.store.append('tasks/a', 0, [commit('c1', events('c1', 1, 10))]);
        const snapshot: Snapshot = { stream: 'tasks/a', version: 6, state: { tasks: { t1: { title: 'one' } }, count: 6 } };
        await handle.store.saveSnapshot(snapshot);
        await handle.store.compact('tasks/a', 5);
        const info = await handle.store.info('tasks/a');
        const store = await handle.reopen();
        expect(await store.loadSnapshot('tasks/a')).toEqual(snapshot);
        expect(await store.info('tasks/a')).toEqual(info);
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual(range(info.oldestRetained, 10));
      });

      it('keeps nothing of a rejected append', async () => {
        const handle = await open();
        await handle.store.append('tasks/a', 0, [commit('c1', events('c1', 1, 1))]);
        await expect(handle.store.append('tasks/a', 0, [commit('lost', events('lost', 1, 1))])).rejects.toBeInstanceOf(StoreConflictError);
        await expect(handle.store.append('tasks/a', 1, [commit('half', events('half', 2, 1)), commit('c1', events('c1', 3, 1))])).rejects.toThrow();
        const store = await handle.reopen();
        expect(await store.info('tasks/a')).toEqual({ head: 1, oldestRetained: 1 });
        expect(versions(await store.read('tasks/a', 1, 100))).toEqual([1]);
        await expectUnknownCommands(store, ['lost', 'half']);
      });
    });
  });
}

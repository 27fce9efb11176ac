/**
 * Scale (issue 18): the cost of one command, or one event, against the size of the state. Boards of
 * 100, 1,000, 10,000 and 100,000 tasks (200-character descriptions), all in one process, measured in
 * the same rounds, with `task.update` changing one task's description:
 *
 * - hub, one at a time: `hub.execute` awaited before the next (an interactive workload: one command a batch);
 * - hub, batched: 1,000 `hub.execute` queued at once (the hub decides them in a few batches), per command;
 * - client, live event: a client store (`SyncedStream`, as the client drives it) applies one confirmed
 *   event and the UI reads its state (`getSnapshot`), per event;
 * - client, rebase: the same with 10 commands of its own pending, re-decided on top of each confirmed event.
 *
 * In process, without network: a `Hub` on a `MemoryEventStore` with its defaults (snapshots every 1,000
 * events and the state budget included: their cost is part of a command's), the board written to the
 * store as events (the hub loads it), client stores seeded with the hub's state as a subscribe answer.
 * Each measure runs for a time budget per round (at least a few operations); rounds alternate the
 * boards; figures are medians over rounds, ratios the medians of the same-round ratios.
 */
import { performance } from 'node:perf_hooks';
import { SyncedStream } from '@lockstep/client';
import { tasksDomain, type Event } from '@lockstep/core';
import { Hub, MemoryEventStore, type Commit } from '@lockstep/server';
import { round } from './harness.js';
import { median, report, smoke } from './stats.js';

const SIZES = smoke ? [100, 1_000] : [100, 1_000, 10_000, 100_000];
const ROUNDS = smoke ? 1 : 7;
/**
 * Time spent on one measure of one board per round, and the bounds on its operations. By time, not
 * by count: a window of a few milliseconds holds no garbage collection, and the heap's size is what
 * makes a large board costlier (the floor measures that).
 */
const BUDGET_MS = smoke ? 20 : 500;
/** Time spent on each measure of each board before the measured rounds. */
const WARM_UP_MS = smoke ? 20 : 2_000;
const MIN_OPS = 3;
const MAX_OPS = smoke ? 50 : Number.POSITIVE_INFINITY;
const BURST = smoke ? 50 : 1_000;
const PENDING = 10;
const DESCRIPTION = 'd'.repeat(200);

type Measure = 'one at a time' | 'batched' | 'live event' | 'live event, 100 active tasks' | 'rebase' | 'floor: Map in place';
/**
 * The four measures of the issue, and two that tell the size of the state from the size of what
 * changes. The floor: the live events' changes made to a mutable `Map` of the same tasks, in place
 * (no persistence, no draft, no store): what changing a task taken anywhere in the board costs on
 * this machine at each size — a board of 100,000 tasks does not fit in the processor's caches, and
 * every changed task outlives the young generation, whatever the data structure. And the live event
 * when the changes fall on 100 tasks of the board (agents at work on a few tasks of a large board):
 * the same store and state, only the working set differs.
 */
const MEASURES: readonly Measure[] = ['one at a time', 'batched', 'live event', 'live event, 100 active tasks', 'rebase', 'floor: Map in place'];
/** The tasks that change in the "100 active tasks" measure: the first 100 of the order below. */
const ACTIVE = 100;

const taskId = (i: number) => `task_${i}`;
/** A 200-character description that differs from every other one. */
const description = (n: number) => `${n} ${DESCRIPTION}`.slice(0, 200);

interface Board {
  size: number;
  hub: Hub;
  stream: string;
  live: SyncedStream<typeof tasksDomain>;
  rebasing: SyncedStream<typeof tasksDomain>;
  /** Confirmed versions handed to the client stores so far. */
  clientVersion: number;
  commands: number;
  /** Changes made to the floor's map so far. */
  floorChanges: number;
  /** Per measure, µs per operation, one sample per round. */
  samples: Map<Measure, number[]>;
  /** The floor's tasks. */
  map: Map<string, Record<string, unknown>>;
}

/** Appends the board's `task.created` events in commits of 1,000, as from another hub. */
async function seed(store: MemoryEventStore, stream: string, size: number): Promise<void> {
  const time = Date.now();
  for (let done = 0; done < size; done += 1_000) {
    const count = Math.min(1_000, size - done);
    const commits: Commit[] = Array.from({ length: count }, (_, i) => {
      const version = done + i + 1;
      const data = {
        id: taskId(version - 1),
        title: `Task ${version - 1}`,
        description: description(-version),
        status: 'pending',
        priority: 'medium',
        at: time,
      };
      return {
        commandId: `seed-${version}`,
        fingerprint: `fp-${version}`,
        events: [{ version, type: 'task.created', data, time, commandId: `seed-${version}`, schemaVersion: 2 }],
      };
    });
    await store.append(stream, done, commits);
  }
}

/** What a client store needs of its client (`StreamOwner`, internal): here nothing is ever sent. */
type StreamOwner = ConstructorParameters<typeof SyncedStream>[2];

function owner(): StreamOwner {
  let ids = 0;
  return {
    clientId: 'bench-client',
    now: () => Date.now(),
    newCommandId: () => `bench-client-${ids++}`,
    connectionStatus: () => 'online',
    send: () => {},
    resubscribe: () => {
      throw new Error('scale: the client store asked to resubscribe');
    },
    release: () => {},
  };
}

/** A client store holding `state` at `version`, as after a subscribe answer with a snapshot. */
function clientStore(state: unknown, version: number): SyncedStream<typeof tasksDomain> {
  const stream = new SyncedStream(tasksDomain, 'tasks/scale', owner());
  const { epoch } = stream.beginSubscribe();
  stream.onSubscribed(epoch, { stream: 'tasks/scale', version, head: version, oldestRetained: 1, snapshot: state });
  return stream;
}

async function open(size: number): Promise<Board> {
  const store = new MemoryEventStore();
  const stream = `tasks/scale-${size}`;
  await seed(store, stream, size);
  const hub = new Hub({ domains: [tasksDomain], store, rateLimit: false });
  const { state, version } = await hub.read(stream);
  // The client stores get the state as it arrives over the wire: JSON, built by nobody else.
  const text = JSON.stringify(state);
  const live = clientStore(JSON.parse(text), version);
  const rebasing = clientStore(JSON.parse(text), version);
  for (let i = 0; i < PENDING; i++) {
    void rebasing.dispatch({ type: 'task.update', payload: { id: taskId((i * 31) % size), title: `Pending ${i}` } });
  }
  if (Object.keys(rebasing.getSnapshot().tasks).length !== size || rebasing.pendingCommands.length !== PENDING) {
    throw new Error('scale: the client stores do not hold the board');
  }
  const map = new Map(Object.entries((JSON.parse(text) as { tasks: Record<string, Record<string, unknown>> }).tasks));
  return { size, hub, stream, live, rebasing, clientVersion: version, commands: 0, floorChanges: 0, samples: new Map(MEASURES.map((m) => [m, []])), map };
}

/** Runs `op` for the time budget (within the bounds on operations): µs per operation. */
async function timed(op: (i: number) => unknown, budget: number): Promise<number> {
  const start = performance.now();
  let ops = 0;
  while (ops < MAX_OPS && (ops < MIN_OPS || performance.now() - start < budget)) {
    const result = op(ops++);
    if (result instanceof Promise) await result;
  }
  return ((performance.now() - start) * 1_000) / ops;
}

function command(board: Board) {
  const n = board.commands++;
  return {
    id: `scale-${board.size}-${n}`,
    stream: board.stream,
    type: 'task.update',
    payload: { id: taskId((n * 7_919) % board.size), description: description(n) },
  };
}

/**
 * A confirmed `task.updated` from some other client, at the client stores' next version, of a task
 * taken in a fixed order that visits every task of the board (or of its first `span`) in turn.
 */
function confirmedEvent(board: Board, span = board.size): Event {
  const version = ++board.clientVersion;
  const data = { id: taskId((version * 7_919) % span), changes: { description: description(version) }, at: Date.now() };
  return { version, type: 'task.updated', data, time: Date.now(), commandId: `other-${version}` };
}

async function measure(board: Board, what: Measure, budget = BUDGET_MS): Promise<number> {
  switch (what) {
    case 'one at a time':
      return timed(() => board.hub.execute(command(board)), budget);
    case 'batched': {
      const start = performance.now();
      let done = 0;
      while (done < MAX_OPS * 2 && (done === 0 || performance.now() - start < budget)) {
        await Promise.all(Array.from({ length: BURST }, () => board.hub.execute(command(board))));
        done += BURST;
      }
      return ((performance.now() - start) * 1_000) / done;
    }
    case 'live event':
    case 'live event, 100 active tasks':
    case 'rebase': {
      const store = what === 'rebase' ? board.rebasing : board.live;
      // Both stores follow the same log: each gets every event once, the other's outside the timing.
      const other = what === 'rebase' ? board.live : board.rebasing;
      const span = what === 'live event, 100 active tasks' ? ACTIVE : board.size;
      const events: Event[] = [];
      const perOp = await timed(() => {
        const event = confirmedEvent(board, span);
        events.push(event);
        store.onEvents([event]);
        return store.getSnapshot();
      }, budget);
      other.onEvents(events);
      other.getSnapshot();
      return perOp;
    }
    case 'floor: Map in place':
      return timed(() => {
        // The tasks the client stores change, in the same order (an event's data, as it arrives).
        const version = ++board.floorChanges + board.size;
        const data = { id: taskId((version * 7_919) % board.size), changes: { description: description(version) }, at: Date.now() };
        board.map.set(data.id, { ...board.map.get(data.id), description: data.changes.description, updatedAt: data.at });
      }, budget);
  }
}

const boards: Board[] = [];
for (const size of SIZES) {
  const start = performance.now();
  boards.push(await open(size));
  console.error(`  board of ${size} tasks ready in ${round(performance.now() - start)} ms`);
}
// The first event on a state loaded from JSON (a snapshot) turns its large records into persistent
// ones: one pass over the state, once. Timed on its own, then every measure runs unmeasured for a while:
// compiled code, and a heap that has grown to the size this process keeps (a server that has been up).
const firstEvent = new Map<Board, number>();
for (const board of boards) {
  const { state, version } = await board.hub.read(board.stream);
  const fresh = clientStore(JSON.parse(JSON.stringify(state)), version);
  const data = { id: taskId(0), changes: { title: 'first' }, at: Date.now() };
  const start = performance.now();
  fresh.onEvents([{ version: version + 1, type: 'task.updated', data, time: Date.now(), commandId: 'first' }]);
  fresh.getSnapshot();
  firstEvent.set(board, performance.now() - start);
  fresh.close();
  console.error(`  first event on a freshly loaded board of ${board.size} tasks: ${round(firstEvent.get(board)!)} ms`);
}
for (const board of boards) for (const what of MEASURES) await measure(board, what, WARM_UP_MS);

for (let run = 0; run < ROUNDS; run++) {
  for (const what of MEASURES) {
    for (let k = 0; k < boards.length; k++) {
      const board = boards[(run + k) % boards.length]!;
      const us = await measure(board, what);
      board.samples.get(what)!.push(us);
      console.error(`  run ${run + 1}/${ROUNDS} ${what}, ${board.size} tasks: ${round(us)} µs`);
    }
  }
}

const pending = boards.find((board) => board.rebasing.pendingCommands.length !== PENDING);
if (pending) throw new Error(`scale: the rebasing store of ${pending.size} tasks lost its pending commands`);
for (const board of boards) {
  const { state, version } = await board.hub.read(board.stream);
  if (Object.keys((state as { tasks: object }).tasks).length !== board.size || version !== board.size + board.commands) {
    throw new Error(`scale: the hub of ${board.size} tasks is not where the commands left it`);
  }
}

const small = boards[0]!;
const large = boards[boards.length - 1]!;
const rows = boards.map((board) => ({
  subject: `${board.size.toLocaleString('en')} tasks`,
  metrics: { ...Object.fromEntries(MEASURES.map((what) => [what, median(board.samples.get(what)!)])), 'first event after load': firstEvent.get(board)! },
}));
const ratios: Record<string, number> = {};
for (const what of MEASURES) {
  const a = large.samples.get(what)!;
  const b = small.samples.get(what)!;
  // The four measures have the target; the floor and the active-tasks variant explain them.
  const target = what === 'floor: Map in place' || what === 'live event, 100 active tasks' ? '' : ' (target ≤ 1.5)';
  ratios[`${what}: ${large.size.toLocaleString('en')} / ${small.size} tasks${target}`] = median(a.map((value, run) => value / b[run]!));
}
for (const [name, value] of Object.entries(ratios)) console.error(`${name}: ${round(value)}`);
await Promise.all(boards.map((board) => board.hub.close()));
report({
  scenario: 'scale',
  description: `Cost of one task.update against the board size (200-character descriptions), in process: through the hub one at a time and ${BURST} queued at once (memory store, hub defaults: snapshots and state budget included), a client store applying one confirmed event and reading its state (events on tasks all over the board, and on ${ACTIVE} active tasks only), and the same with ${PENDING} commands pending (rebased on each event); as a floor, the live events' changes made in place to a mutable Map of the tasks. ${ROUNDS} rounds alternating the boards, medians; ratios are medians of same-round ratios.`,
  units: {
    ...Object.fromEntries(MEASURES.map((what) => [what, what === 'one at a time' || what === 'batched' ? 'µs per command' : 'µs per event'])),
    'first event after load': 'ms, once',
  },
  rows,
  ratios,
  notes: [
    'Boards are written to the store as `task.created` events and loaded by the hub; client stores start from the hub state as JSON (as a snapshot arrives).',
    `Every measure runs unmeasured on every board for ${WARM_UP_MS / 1_000} s first (a process that has been up a while: compiled code, a grown heap).`,
    'First event after load: a client store holding a board from a snapshot (plain JSON) applies its first event, which turns the large record into a persistent one — one pass over the state, once per load (the hub pays it on its first command after loading).',
  ],
});
process.exit(0);

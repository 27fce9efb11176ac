import { createClient, type ConfirmedChange } from '@lockstep/client';
import { createMemoryLink, tasksDomain, type MemoryLink, type TasksState } from '@lockstep/core';
import { Hub, MemoryEventStore } from '@lockstep/server';
import { filter, firstValueFrom } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';

type Change = ConfirmedChange<TasksState>;

const hubs: Hub[] = [];
afterEach(async () => {
  for (const hub of hubs.splice(0)) await hub.close();
});

function newHub(): Hub {
  const hub = new Hub({ domains: [tasksDomain], store: new MemoryEventStore() });
  hubs.push(hub);
  return hub;
}

/** What a change says, without the event data: kind and versions. */
function summary(change: Change): string {
  switch (change.kind) {
    case 'events':
      return `events ${change.events.map((event) => event.version).join(',')}`;
    case 'snapshot':
      return `snapshot ${change.version}`;
    case 'reset':
      return 'reset';
  }
}

const create = (n: number) => ({ id: `cmd-${n}`, stream: 'tasks/p1', type: 'task.create', payload: { id: `task_${n}`, title: `Task ${n}` } });

describe('SyncedStream.changes$', () => {
  it('reports every applied version once and in order, across a reconnect, a snapshot and a new epoch', async () => {
    let target = newHub();
    await target.execute(create(1));
    const links: MemoryLink[] = [];
    const client = createClient({
      backoff: { initialMs: 1, maxMs: 5 },
      connect: () => {
        const link = createMemoryLink();
        target.accept(link.server);
        links.push(link);
        return link.client;
      },
    });
    const board = client.stream(tasksDomain, 'p1');
    const changes: Change[] = [];
    let completed = false;
    board.changes$.subscribe({ next: (change) => changes.push(change), complete: () => (completed = true) });
    const atVersion = (version: number) => firstValueFrom(board.status$.pipe(filter((s) => s.status === 'online' && s.confirmedVersion === version)));

    // A first subscription holds no state: the hub answers with a snapshot.
    await atVersion(1);
    expect(changes.map(summary)).toEqual(['snapshot 1']);
    expect(changes[0]).toMatchObject({ kind: 'snapshot', state: { tasks: { task_1: { title: 'Task 1' } } } });

    await target.execute(create(2));
    await target.execute(create(3));
    await atVersion(3);

    // Missed while disconnected: caught up with `since`, reported as events.
    links.at(-1)!.disconnect();
    await target.execute(create(4));
    await target.execute(create(5));
    await atVersion(5);
    const events = changes.flatMap((change) => (change.kind === 'events' ? change.events : []));
    expect(events.map((event) => event.version)).toEqual([2, 3, 4, 5]);
    expect(events.map((event) => [event.type, event.commandId])).toEqual([2, 3, 4, 5].map((n) => ['task.created', `cmd-${n}`]));
    expect(changes.at(-1)).toMatchObject({ kind: 'events', version: 5 });

    // Another log: reset, then a snapshot of the new one.
    const other = newHub();
    await other.execute(create(9));
    target = other;
    links.at(-1)!.disconnect();
    await firstValueFrom(board.status$.pipe(filter((s) => s.status === 'online' && board.getSnapshot().tasks['task_9'] !== undefined)));
    expect(changes.slice(-2).map(summary)).toEqual(['reset', 'snapshot 1']);

    client.close();
    expect(completed).toBe(true);
  });
});

describe('SyncedStream state and status while nobody watches', () => {
  // Unobserved, a live event computes neither the view nor the status (decision 110): they are made
  // when read, and observers that arrive later start from the latest of both.
  it('getSnapshot, getStatus, state$ and status$ show the latest after changes nobody observed', async () => {
    const hub = newHub();
    const link = createMemoryLink();
    hub.accept(link.server);
    const client = createClient({ connect: () => link.client });
    const board = client.stream(tasksDomain, 'p1');
    await hub.execute(create(1));
    await board.waitFor(1);
    const first = board.getStatus();
    expect(board.getStatus()).toBe(first);

    for (let n = 2; n <= 4; n++) await hub.execute(create(n));
    await board.waitFor(4);
    const status = board.getStatus();
    expect(status).not.toBe(first);
    expect(status).toMatchObject({ status: 'online', confirmedVersion: 4, serverVersion: 4, lag: 0, pending: 0 });
    // The same objects until something changes (what useSyncExternalStore needs).
    expect(board.getStatus()).toBe(status);
    const snapshot = board.getSnapshot();
    expect(Object.keys(snapshot.tasks)).toEqual(['task_1', 'task_2', 'task_3', 'task_4']);
    expect(board.getSnapshot()).toBe(snapshot);

    const states: TasksState[] = [];
    const versions: number[] = [];
    const subscriptions = [board.state$.subscribe((state) => states.push(state)), board.status$.subscribe((s) => versions.push(s.confirmedVersion))];
    expect(states).toEqual([snapshot]);
    expect(states[0]).toBe(snapshot);
    expect(versions).toEqual([4]);

    // Observed, every change reaches the observers as it happens.
    await hub.execute(create(5));
    await board.waitFor(5);
    expect(Object.keys(states.at(-1)!.tasks)).toHaveLength(5);
    expect(versions.at(-1)).toBe(5);
    expect(board.getSnapshot()).toBe(states.at(-1));
    expect(board.getStatus().confirmedVersion).toBe(5);
    for (const subscription of subscriptions) subscription.unsubscribe();

    client.close();
    expect(board.getStatus().status).toBe('closed');
  });
});

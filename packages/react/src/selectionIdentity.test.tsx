// @vitest-environment happy-dom
import { isPersistentRecord, RECORD_THRESHOLD, tasksDomain, type Task, type TasksState } from '@lockstep/core';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { testWorld, withProvider } from './test/world.js';
import { useStream } from './useStream.js';

afterEach(cleanup);

const PROJECT = 'big';
/** Past the size at which a changed record becomes a persistent record. */
const TASKS = RECORD_THRESHOLD * 3;

describe('selecting from a large board', () => {
  it('keeps the identity of every entity that did not change, so only what changed re-renders', async () => {
    const w = testWorld();
    onTestFinished(() => w.close());
    for (let i = 0; i < TASKS; i++) {
      await w.hub.execute({ id: `seed-${i}`, stream: `tasks/${PROJECT}`, type: 'task.create', payload: { id: `t${i}`, title: `Task ${i}` } });
    }
    const me = w.connect('me');
    const other = w.connect('other');
    const renders = new Map<string, number>();
    let boards = 0;
    // Default equality (Object.is): a component re-renders exactly when its task object is a new one.
    function Row({ id }: { id: string }) {
      renders.set(id, (renders.get(id) ?? 0) + 1);
      const task = useStream(tasksDomain, PROJECT, (state: TasksState) => state.tasks[id]);
      return <li data-testid={id}>{task?.title ?? '—'}</li>;
    }
    function Count() {
      boards++;
      const tasks = useStream(tasksDomain, PROJECT, (state: TasksState) => state.tasks);
      return <p data-testid="count">{Object.keys(tasks).length}</p>;
    }
    const ids = ['t0', 't1', `t${TASKS - 1}`];
    render(
      <>
        {ids.map((id) => (
          <Row key={id} id={id} />
        ))}
        <Count />
      </>,
      { wrapper: withProvider(me.client) },
    );
    await waitFor(() => expect(screen.getByTestId('count').textContent).toBe(String(TASKS)));
    await waitFor(() => expect(screen.getByTestId('t1').textContent).toBe('Task 1'));

    const mine = me.client.stream(tasksDomain, PROJECT);
    const before = mine.getSnapshot();
    const settled = new Map(renders);
    const boardsBefore = boards;

    const board = other.client.stream(tasksDomain, PROJECT);
    await board.dispatch({ type: 'task.update', payload: { id: 't1', title: 'Renamed' } });
    await waitFor(() => expect(screen.getByTestId('t1').textContent).toBe('Renamed'));
    const after = mine.getSnapshot();

    expect(isPersistentRecord(after.tasks)).toBe(true);
    expect(after.tasks).not.toBe(before.tasks);
    expect(after.tasks['t1']).not.toBe(before.tasks['t1']);
    for (let i = 0; i < TASKS; i++) {
      if (i !== 1) expect(after.tasks[`t${i}`], `t${i}`).toBe(before.tasks[`t${i}`] as Task);
    }
    expect(renders.get('t1')).toBe(settled.get('t1')! + 1);
    expect(renders.get('t0')).toBe(settled.get('t0'));
    expect(renders.get(`t${TASKS - 1}`)).toBe(settled.get(`t${TASKS - 1}`));
    // The record is a new object: what selects it sees the change.
    expect(boards).toBe(boardsBefore + 1);
    expect(Object.values(after.tasks).map((task) => task.title)).toEqual(Array.from({ length: TASKS }, (_, i) => (i === 1 ? 'Renamed' : `Task ${i}`)));
  });
});

// @vitest-environment happy-dom
import { LockstepError, tasksDomain, type Task, type TasksState } from '@lockstep/core';
import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import { StrictMode, memo, useState } from 'react';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { shallowEqual } from './shallowEqual.js';
import { testWorld, withProvider } from './test/world.js';
import { useCommand } from './useCommand.js';
import { useStream, useStreamStatus } from './useStream.js';

afterEach(cleanup);

const PROJECT = 'proj_1';

function world() {
  const w = testWorld();
  onTestFinished(() => w.close());
  return w;
}

function Board() {
  const state = useStream(tasksDomain, PROJECT);
  const status = useStreamStatus(tasksDomain, PROJECT);
  return (
    <div>
      <ul>
        {Object.values(state.tasks).map((task) => (
          <li key={task.id} data-testid={`task-${task.id}`}>
            {task.title} [{task.status}]
          </li>
        ))}
      </ul>
      <p data-testid="status">
        {status.status} v{status.confirmedVersion} pending {status.pending}
      </p>
    </div>
  );
}

describe('useStream', () => {
  it('renders the stream and follows changes made by other clients', async () => {
    const { connect, hub } = world();
    await hub.execute({ id: 'seed-1', stream: `tasks/${PROJECT}`, type: 'task.create', payload: { id: 't1', title: 'Write the docs' } });
    const me = connect('me');
    const other = connect('other');
    render(<Board />, { wrapper: withProvider(me.client) });

    expect(await screen.findByTestId('task-t1')).toHaveProperty('textContent', 'Write the docs [pending]');
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('online v1 pending 0'));

    const board = other.client.stream(tasksDomain, PROJECT);
    await board.dispatch({ type: 'task.update', payload: { id: 't1', status: 'completed' } });
    await board.dispatch({ type: 'task.create', payload: { id: 't2', title: 'Ship it' } });
    await waitFor(() => expect(screen.getByTestId('task-t1').textContent).toBe('Write the docs [completed]'));
    expect((await screen.findByTestId('task-t2')).textContent).toBe('Ship it [pending]');
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('online v3 pending 0'));
  });

  it('re-renders a component only when its selected value changes', async () => {
    const { connect } = world();
    const me = connect('me');
    const other = connect('other');
    const renders = { t1: 0, t2: 0, titles: 0 };
    function Title({ id }: { id: 't1' | 't2' }) {
      renders[id]++;
      const title = useStream(tasksDomain, PROJECT, (state: TasksState) => state.tasks[id]?.title ?? '—');
      return <span data-testid={`title-${id}`}>{title}</span>;
    }
    // A new array on every run of the selector: shallowEqual keeps the previous one when the items are the same.
    function Titles() {
      renders.titles++;
      const titles = useStream(tasksDomain, PROJECT, (state: TasksState) => Object.values(state.tasks).map((task) => task.title), shallowEqual);
      return <span data-testid="titles">{titles.join(', ')}</span>;
    }
    render(
      <>
        <Title id="t1" />
        <Title id="t2" />
        <Titles />
      </>,
      { wrapper: withProvider(me.client) },
    );
    const board = other.client.stream(tasksDomain, PROJECT);
    await board.dispatch({ type: 'task.create', payload: { id: 't1', title: 'One' } });
    await board.dispatch({ type: 'task.create', payload: { id: 't2', title: 'Two' } });
    await waitFor(() => expect(screen.getByTestId('titles').textContent).toBe('One, Two'));
    const settled = { ...renders };

    // t2's status changes: no title changes, so nobody re-renders…
    await board.dispatch({ type: 'task.update', payload: { id: 't2', status: 'in_progress' } });
    const mine = me.client.stream(tasksDomain, PROJECT);
    await waitFor(() => expect(mine.version).toBe(board.version));
    expect(renders).toEqual(settled);

    // …and t2's title changes: only t2 and the list re-render.
    await board.dispatch({ type: 'task.update', payload: { id: 't2', title: 'Deux' } });
    await waitFor(() => expect(screen.getByTestId('title-t2').textContent).toBe('Deux'));
    expect(screen.getByTestId('titles').textContent).toBe('One, Deux');
    expect(renders).toEqual({ t1: settled.t1, t2: settled.t2 + 1, titles: settled.titles + 1 });
  });

  it('keeps an equal selection when a parent re-renders with a new inline selector', async () => {
    const { connect, hub } = world();
    await hub.execute({ id: 'seed-1', stream: `tasks/${PROJECT}`, type: 'task.create', payload: { id: 't1', title: 'One' } });
    const me = connect('me');
    let childRenders = 0;
    const Child = memo(function Child({ tasks }: { tasks: Task[] }) {
      childRenders++;
      return <span data-testid="count">{tasks.length}</span>;
    });
    let bump: () => void = () => {};
    function Parent() {
      const [n, setN] = useState(0);
      bump = () => setN((value) => value + 1);
      const tasks = useStream(tasksDomain, PROJECT, (state) => Object.values(state.tasks), shallowEqual);
      return (
        <>
          <span data-testid="n">{n}</span>
          <Child tasks={tasks} />
        </>
      );
    }
    render(<Parent />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(screen.getByTestId('count').textContent).toBe('1'));
    const before = childRenders;
    act(() => bump());
    act(() => bump());
    expect(screen.getByTestId('n').textContent).toBe('2');
    expect(childRenders).toBe(before);
  });

  it('shows a command at once, then confirms it', async () => {
    const { connect, hub } = world();
    const me = connect('me');
    let dispatch!: ReturnType<typeof useCommand<typeof tasksDomain>>;
    function Creator() {
      dispatch = useCommand(tasksDomain, PROJECT);
      return null;
    }
    render(
      <>
        <Board />
        <Creator />
      </>,
      { wrapper: withProvider(me.client) },
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('online v0 pending 0'));
    // A slow link from now on: the ack takes a while, the view does not wait for it.
    me.links.at(-1)!.setFaults({ delayMs: 150 });

    let ack: Promise<unknown> | undefined;
    act(() => {
      ack = dispatch({ type: 'task.create', payload: { id: 't1', title: 'Optimistic' } });
    });
    expect(screen.getByTestId('task-t1').textContent).toBe('Optimistic [pending]');
    expect(screen.getByTestId('status').textContent).toBe('online v0 pending 1');
    expect((await hub.read(`tasks/${PROJECT}`)).version).toBe(0);

    await expect(ack).resolves.toEqual({ id: expect.any(String), stream: `tasks/${PROJECT}`, version: 1 });
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('online v1 pending 0'));
    expect(screen.getByTestId('task-t1').textContent).toBe('Optimistic [pending]');
  });

  it('surfaces a refusal: the promise rejects with the reason, the view drops the command, the status keeps the error', async () => {
    const { connect, hub } = world();
    const me = connect('me');
    let dispatch!: ReturnType<typeof useCommand<typeof tasksDomain>>;
    function Creator() {
      dispatch = useCommand(tasksDomain, PROJECT);
      const status = useStreamStatus(tasksDomain, PROJECT);
      return (
        <p data-testid="error">
          {status.lastError ? `${status.lastError.code} ${String((status.lastError.data as { reason?: string } | undefined)?.reason)}` : 'none'}
        </p>
      );
    }
    render(
      <>
        <Board />
        <Creator />
      </>,
      { wrapper: withProvider(me.client) },
    );
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('online v0 pending 0'));
    me.links.at(-1)!.setFaults({ delayMs: 100 });

    // We create `dup` while someone else, faster, already did: locally it looks fine, the hub refuses.
    let refused: Promise<unknown> | undefined;
    act(() => {
      refused = dispatch({ type: 'task.create', payload: { id: 'dup', title: 'Mine' } }).catch((error: unknown) => error);
    });
    expect(screen.getByTestId('task-dup').textContent).toBe('Mine [pending]');
    await hub.execute({ id: 'theirs-1', stream: `tasks/${PROJECT}`, type: 'task.create', payload: { id: 'dup', title: 'Theirs' } });

    const error = await refused;
    expect(error).toBeInstanceOf(LockstepError);
    expect(error).toMatchObject({ code: 'COMMAND_REJECTED', data: { reason: 'task.exists' } });
    await waitFor(() => expect(screen.getByTestId('task-dup').textContent).toBe('Theirs [pending]'));
    expect(screen.getByTestId('error').textContent).toBe('COMMAND_REJECTED task.exists');
    await waitFor(() => expect(screen.getByTestId('status').textContent).toBe('online v1 pending 0'));
  });
});

describe('useStream: subscriptions', () => {
  it('closes a stream it opened once the last component using it unmounts, and keeps one it did not open', async () => {
    const { connect } = world();
    const me = connect('me');
    const other = connect('other');
    let renders = 0;
    function Count({ project }: { project: string }) {
      renders++;
      const count = useStream(tasksDomain, project, (state) => Object.keys(state.tasks).length);
      return <span data-testid={`count-${project}`}>{count}</span>;
    }
    const mine = me.client.stream(tasksDomain, 'kept'); // opened by the application
    const view = render(
      <>
        <Count project="p1" />
        <Count project="p1" />
        <Count project="kept" />
      </>,
      { wrapper: withProvider(me.client, 0) },
    );
    await waitFor(() => expect(me.client.status.status).toBe('online'));
    const opened = me.client.streams.get('tasks/p1')!;
    expect(opened).toBeDefined();

    view.rerender(
      <>
        <Count project="p1" />
        <Count project="kept" />
      </>,
    );
    // One user left: still open.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(opened.closed).toBe(false);

    view.unmount();
    await waitFor(() => expect(opened.closed).toBe(true));
    expect(me.client.streams.has('tasks/p1')).toBe(false);
    expect(mine.closed).toBe(false);
    expect(me.client.streams.get('tasks/kept')).toBe(mine);

    // Nothing renders for changes after the unmount, and the hub no longer sends the closed stream.
    const rendersAfterUnmount = renders;
    const received: string[] = [];
    me.links.at(-1)!.client.frames.subscribe((frame) => received.push(String(frame)));
    await other.client.stream(tasksDomain, 'p1').dispatch({ type: 'task.create', payload: { title: 'Late' } });
    await other.client.stream(tasksDomain, 'kept').dispatch({ type: 'task.create', payload: { title: 'Kept' } });
    await waitFor(() => expect(mine.getSnapshot().tasks).not.toEqual({}));
    expect(received.some((frame) => frame.includes('"tasks/kept"'))).toBe(true);
    expect(received.some((frame) => frame.includes('"tasks/p1"'))).toBe(false);
    expect(renders).toBe(rendersAfterUnmount);
  });

  it('keeps one subscription through StrictMode’s mount, unmount and mount', async () => {
    const { connect } = world();
    const me = connect('me');
    const sent: string[] = [];
    function Count() {
      const count = useStream(tasksDomain, 'strict', (state) => Object.keys(state.tasks).length);
      return <span data-testid="count">{count}</span>;
    }
    await waitFor(() => expect(me.client.status.status).toBe('online'));
    me.links.at(-1)!.server.frames.subscribe((frame) => sent.push(String(frame)));
    render(
      <StrictMode>
        <Count />
      </StrictMode>,
      { wrapper: withProvider(me.client, 0) },
    );
    const stream = me.client.streams.get('tasks/strict')!;
    await waitFor(() => expect(stream.getStatus().status).toBe('online'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(stream.closed).toBe(false);
    expect(me.client.streams.get('tasks/strict')).toBe(stream);
    expect(sent.filter((frame) => frame.includes('"unsubscribe"'))).toEqual([]);
    expect(sent.filter((frame) => frame.includes('"subscribe"'))).toHaveLength(1);
  });

  it('needs a provider', () => {
    function Lonely() {
      useStream(tasksDomain, PROJECT);
      return null;
    }
    const quiet = console.error;
    console.error = () => {};
    onTestFinished(() => {
      console.error = quiet;
    });
    expect(() => render(<Lonely />)).toThrow(/LockstepProvider/);
  });
});

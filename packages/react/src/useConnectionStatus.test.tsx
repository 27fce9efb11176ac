// @vitest-environment happy-dom
import { orchestrationDomain, tasksDomain } from '@lockstep/core';
import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { testWorld, withProvider } from './test/world.js';
import { useCommand, type Dispatch } from './useCommand.js';
import { useConnectionStatus } from './useConnectionStatus.js';
import { useStream } from './useStream.js';

afterEach(cleanup);

function world() {
  const w = testWorld();
  onTestFinished(() => w.close());
  return w;
}

describe('useConnectionStatus', () => {
  it('follows the connection through a disconnect and a reconnect, with the pending count of every stream', async () => {
    const { connect, hub } = world();
    const me = connect('me');
    const statuses: string[] = [];
    let setDesired!: Dispatch<typeof orchestrationDomain>;
    let createTask!: Dispatch<typeof tasksDomain>;
    function Indicator() {
      const { status, pending, attempt } = useConnectionStatus();
      if (statuses.at(-1) !== status) statuses.push(status);
      setDesired = useCommand(orchestrationDomain, 'default');
      createTask = useCommand(tasksDomain, 'proj_1');
      const desired = useStream(orchestrationDomain, 'default', (state) => state.totals.desired);
      return (
        <p data-testid="connection">
          {status} pending {pending} attempt {attempt} desired {desired}
        </p>
      );
    }
    render(<Indicator />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toBe('online pending 0 attempt 0 desired 0'));

    // The link drops and new connections are refused for now: offline, retrying.
    me.refuse = true;
    act(() => me.links.at(-1)!.disconnect('cable pulled'));
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toMatch(/^offline pending 0 attempt [1-9]/));

    // Commands made offline count as pending, on both streams, and show optimistically.
    let acks: Promise<unknown> | undefined;
    act(() => {
      acks = Promise.all([
        setDesired({ type: 'workspace.setDesired', payload: { workspaceId: '/ws/a', desired: 3 } }),
        createTask({ type: 'task.create', payload: { title: 'While offline' } }),
      ]);
    });
    expect(screen.getByTestId('connection').textContent).toMatch(/^offline pending 2 attempt \d+ desired 3$/);

    me.refuse = false;
    await acks;
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toBe('online pending 0 attempt 0 desired 3'));
    expect((await hub.read('orchestration/default')).version).toBe(1);
    // Online, then offline (and connecting) until online again.
    const afterFirstOnline = statuses.slice(statuses.indexOf('online'));
    expect(afterFirstOnline).toContain('offline');
    expect(afterFirstOnline.at(-1)).toBe('online');
  });

  it('counts the pending commands of a stream opened after it subscribed', async () => {
    const { connect } = world();
    // Retries far apart: while offline, the client's own status stays still.
    const me = connect('me', { initialMs: 60_000, maxMs: 60_000, jitter: 0 });
    function Indicator() {
      const { status, pending } = useConnectionStatus();
      return (
        <p data-testid="connection">
          {status} pending {pending}
        </p>
      );
    }
    let dispatch: Dispatch<typeof tasksDomain> | undefined;
    function Late() {
      dispatch = useCommand(tasksDomain, 'late');
      return null;
    }
    const view = render(<Indicator />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toBe('online pending 0'));
    act(() => me.links.at(-1)!.disconnect());
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toBe('offline pending 0'));

    view.rerender(
      <>
        <Indicator />
        <Late />
      </>,
    );
    // Only the new stream knows about this command: the indicator must be watching it.
    act(() => {
      void dispatch!({ type: 'task.create', payload: { title: 'Queued' } }).catch(() => {});
    });
    await waitFor(() => expect(screen.getByTestId('connection').textContent).toBe('offline pending 1'));
  });

  it('returns the same object while nothing it reports changes', async () => {
    const { connect } = world();
    const me = connect('me');
    const other = connect('other');
    const seen: object[] = [];
    function Probe() {
      const status = useConnectionStatus();
      useStream(tasksDomain, 'proj_1'); // changes on this stream must not make a new status object
      if (seen.at(-1) !== status) seen.push(status);
      return null;
    }
    render(<Probe />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(me.client.streams.get('tasks/proj_1')?.getStatus().status).toBe('online'));
    const before = seen.length;
    await other.client.stream(tasksDomain, 'proj_1').dispatch({ type: 'task.create', payload: { title: 'Elsewhere' } });
    await waitFor(() => expect(me.client.streams.get('tasks/proj_1')?.version).toBe(1));
    expect(seen.length).toBe(before);
  });
});

describe('useCommand', () => {
  it('returns the same function across renders', async () => {
    const { connect } = world();
    const me = connect('me');
    const dispatches = new Set<unknown>();
    let rerender: () => void = () => {};
    function Button() {
      const [, setN] = useState(0);
      rerender = () => setN((n) => n + 1);
      dispatches.add(useCommand(tasksDomain, 'proj_1'));
      return null;
    }
    render(<Button />, { wrapper: withProvider(me.client) });
    act(() => rerender());
    act(() => rerender());
    expect(dispatches.size).toBe(1);
  });
});

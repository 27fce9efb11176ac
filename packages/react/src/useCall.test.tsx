// @vitest-environment happy-dom
import { LockstepError, defineService, method } from '@lockstep/core';
import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import { StrictMode, useState } from 'react';
import { afterEach, describe, expect, expectTypeOf, it, onTestFinished } from 'vitest';
import * as z from 'zod';
import { testWorld, withProvider } from './test/world.js';
import { useCall, type CallAction } from './useCall.js';

afterEach(cleanup);

/** A service of the test hub: what each method was called with, and a way to hold answers back. */
const demo = defineService('demo', '1.0.0', {
  echo: method({ params: z.object({ text: z.string() }), result: z.object({ text: z.string(), calls: z.number() }), idempotent: true }),
  counter: method({ params: z.undefined(), result: z.object({ count: z.number() }), idempotent: true }),
  slow: method({ params: z.object({ id: z.string() }), result: z.object({ id: z.string() }) }),
  refuse: method({ params: z.object({ why: z.string() }), result: z.object({}) }),
});
/** Served by nobody. */
const elsewhere = defineService('elsewhere', '1.0.0', { hello: method({ params: z.undefined(), result: z.object({}) }) });

function world() {
  const w = testWorld();
  onTestFinished(() => w.close());
  const echoed: string[] = [];
  let count = 0;
  /** The `slow` calls received, by id: their signals, and how to answer them. */
  const slow = new Map<string, { signal: AbortSignal; answer: () => void }>();
  w.hub.serve(demo, {
    echo: ({ text }) => {
      echoed.push(text);
      return { text: text.toUpperCase(), calls: echoed.length };
    },
    counter: () => ({ count: ++count }),
    slow: ({ id }, { signal }) => new Promise((resolve) => slow.set(id, { signal, answer: () => resolve({ id }) })),
    refuse: ({ why }) => {
      throw new LockstepError('COMMAND_REJECTED', `refused: ${why}`, { reason: 'demo.refused' });
    },
  });
  return { ...w, echoed, slow };
}

describe('useCall with params', () => {
  it('calls on mount and again when the params change by value, showing nothing of the old ones meanwhile', async () => {
    const { connect, echoed } = world();
    const me = connect('me');
    function Echo({ text }: { text: string }) {
      // A new object each render: compared by value.
      const { result, pending } = useCall(demo.echo, { text });
      return <p data-testid="echo">{pending ? 'pending' : `${result?.text} #${result?.calls}`}</p>;
    }
    const { rerender } = render(<Echo text="a" />, { wrapper: withProvider(me.client) });
    expect(screen.getByTestId('echo').textContent).toBe('pending');
    await waitFor(() => expect(screen.getByTestId('echo').textContent).toBe('A #1'));

    rerender(<Echo text="a" />);
    expect(screen.getByTestId('echo').textContent).toBe('A #1');
    rerender(<Echo text="b" />);
    expect(screen.getByTestId('echo').textContent).toBe('pending');
    await waitFor(() => expect(screen.getByTestId('echo').textContent).toBe('B #2'));
    expect(echoed).toEqual(['a', 'b']);
  });

  it('waits while the connection is down, and calls again once it is back', async () => {
    const { connect, echoed } = world();
    const me = connect('me');
    function Echo() {
      const { result, pending, error } = useCall(demo.echo, { text: 'hi' });
      return <p data-testid="echo">{error ? error.code : pending ? 'pending' : result?.calls}</p>;
    }
    render(<Echo />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(screen.getByTestId('echo').textContent).toBe('1'));

    // The link drops and new connections are refused for now: waiting (no UNAVAILABLE shown), nothing called.
    me.refuse = true;
    act(() => me.links.at(-1)!.disconnect('cable pulled'));
    await waitFor(() => expect(me.client.status.attempt).toBeGreaterThan(1));
    expect(screen.getByTestId('echo').textContent).toBe('pending');
    expect(echoed).toEqual(['hi']);

    // Back: asked again (the answer may have changed meanwhile).
    me.refuse = false;
    await waitFor(() => expect(screen.getByTestId('echo').textContent).toBe('2'));
    expect(echoed).toEqual(['hi', 'hi']);
  });

  it('calls again on refresh, keeping the result shown meanwhile; a method without params takes undefined', async () => {
    const { connect } = world();
    const me = connect('me');
    const shown: string[] = [];
    let refresh!: () => void;
    function Counter() {
      const counter = useCall(demo.counter, undefined);
      refresh = counter.refresh;
      const text = `${counter.result?.count ?? '-'}${counter.pending ? '…' : ''}`;
      if (shown.at(-1) !== text) shown.push(text);
      return <p data-testid="count">{text}</p>;
    }
    render(<Counter />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(screen.getByTestId('count').textContent).toBe('1'));
    act(() => refresh());
    await waitFor(() => expect(screen.getByTestId('count').textContent).toBe('2'));
    expect(shown).toEqual(['-…', '1', '1…', '2']);
  });

  it('cancels the call made stale by new params and the one in flight at unmount: the handler sees its signal abort', async () => {
    const { connect, slow } = world();
    const me = connect('me');
    function Slow({ id }: { id: string }) {
      const { result, pending } = useCall(demo.slow, { id });
      return <p data-testid="slow">{pending ? 'pending' : result?.id}</p>;
    }
    const { rerender, unmount } = render(<Slow id="1" />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(slow.has('1')).toBe(true));
    rerender(<Slow id="2" />);
    await waitFor(() => expect(slow.get('1')?.signal.aborted).toBe(true));
    await waitFor(() => expect(slow.has('2')).toBe(true));
    // The stale answer, had it come, would not be shown.
    slow.get('1')!.answer();
    expect(screen.getByTestId('slow').textContent).toBe('pending');
    slow.get('2')!.answer();
    await waitFor(() => expect(screen.getByTestId('slow').textContent).toBe('2'));

    rerender(<Slow id="3" />);
    await waitFor(() => expect(slow.has('3')).toBe(true));
    unmount();
    await waitFor(() => expect(slow.get('3')?.signal.aborted).toBe(true));
  });

  it('shows the refusal with its code, and what the caller checks: bad params, a method nobody serves', async () => {
    const { connect } = world();
    const me = connect('me');
    function Errors() {
      const refused = useCall(demo.refuse, { why: 'because' });
      const invalid = useCall(demo.echo, { text: 42 } as never);
      const unserved = useCall(elsewhere.hello, undefined);
      const line = (error: LockstepError | undefined) =>
        error ? `${error.code}${(error.data as { reason?: string } | undefined)?.reason ? ` ${(error.data as { reason: string }).reason}` : ''}` : '…';
      return <p data-testid="errors">{[refused.error, invalid.error, unserved.error].map(line).join(' | ')}</p>;
    }
    render(<Errors />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(screen.getByTestId('errors').textContent).toBe('COMMAND_REJECTED demo.refused | INVALID_PARAMS | METHOD_NOT_FOUND notServed'));
  });

  it('makes no call while disabled', async () => {
    const { connect, echoed } = world();
    const me = connect('me');
    let enable!: () => void;
    function Maybe() {
      const [enabled, setEnabled] = useState(false);
      enable = () => setEnabled(true);
      const { result, pending } = useCall(demo.echo, { text: 'later' }, { enabled });
      return <p data-testid="maybe">{pending ? 'pending' : (result?.text ?? 'idle')}</p>;
    }
    render(<Maybe />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(me.client.status.status).toBe('online'));
    expect(screen.getByTestId('maybe').textContent).toBe('idle');
    expect(echoed).toEqual([]);
    act(() => enable());
    await waitFor(() => expect(screen.getByTestId('maybe').textContent).toBe('LATER'));
  });

  it('ends with one answer under StrictMode', async () => {
    const { connect } = world();
    const me = connect('me');
    function Echo() {
      const { result } = useCall(demo.echo, { text: 'strict' });
      return <p data-testid="echo">{result?.text ?? '…'}</p>;
    }
    render(
      <StrictMode>
        <Echo />
      </StrictMode>,
      { wrapper: withProvider(me.client) },
    );
    await waitFor(() => expect(screen.getByTestId('echo').textContent).toBe('STRICT'));
  });
});

describe('useCall on demand', () => {
  it("calls when asked, with the last call's result, error and pending; reset forgets them", async () => {
    const { connect, echoed, slow } = world();
    const me = connect('me');
    let echo!: CallAction<typeof demo.echo>;
    let refuse!: CallAction<typeof demo.refuse>;
    let waiting!: CallAction<typeof demo.slow>;
    function Actions() {
      echo = useCall(demo.echo);
      refuse = useCall(demo.refuse);
      waiting = useCall(demo.slow);
      return (
        <p data-testid="actions">
          {echo.result?.text ?? '-'} {refuse.error?.code ?? '-'} {waiting.pending ? 'pending' : (waiting.result?.id ?? '-')}
        </p>
      );
    }
    const { unmount } = render(<Actions />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(me.client.status.status).toBe('online'));
    // Nothing is called until asked.
    expect(echoed).toEqual([]);
    expect(screen.getByTestId('actions').textContent).toBe('- - -');

    let answer: { text: string; calls: number } | undefined;
    await act(async () => {
      answer = await echo.call({ text: 'now' });
    });
    expect(answer).toEqual({ text: 'NOW', calls: 1 });
    expect(screen.getByTestId('actions').textContent).toBe('NOW - -');

    await act(async () => {
      await expect(refuse.call({ why: 'no' })).rejects.toMatchObject({ code: 'COMMAND_REJECTED' });
    });
    expect(screen.getByTestId('actions').textContent).toBe('NOW COMMAND_REJECTED -');
    act(() => refuse.reset());
    expect(screen.getByTestId('actions').textContent).toBe('NOW - -');

    let inFlight: Promise<unknown> | undefined;
    act(() => {
      inFlight = waiting.call({ id: 'w' });
    });
    expect(screen.getByTestId('actions').textContent).toBe('NOW - pending');
    await waitFor(() => expect(slow.has('w')).toBe(true));
    // Unmounted with the call on its way: cancelled, here and at the hub.
    unmount();
    await expect(inFlight).rejects.toMatchObject({ code: 'CANCELLED' });
    await waitFor(() => expect(slow.get('w')?.signal.aborted).toBe(true));
  });

  it('is typed by the method', () => {
    // Compiled, not run: the hooks need a provider.
    function Types() {
      const echo = useCall(demo.echo, { text: 'x' });
      expectTypeOf(echo.result).toEqualTypeOf<{ text: string; calls: number } | undefined>();
      expectTypeOf(echo.error).toEqualTypeOf<LockstepError | undefined>();
      // @ts-expect-error params must fit the method's schema
      useCall(demo.echo, { text: 1 });
      // @ts-expect-error a method that takes params needs them
      useCall(demo.echo, undefined);
      useCall(demo.counter, undefined, { enabled: false });
      const action = useCall(demo.echo);
      expectTypeOf(action.call).returns.toEqualTypeOf<Promise<{ text: string; calls: number }>>();
      // @ts-expect-error the on-demand call checks its params too
      void action.call({ texts: 'x' });
      return null;
    }
    expect(Types).toBeTypeOf('function');
  });
});

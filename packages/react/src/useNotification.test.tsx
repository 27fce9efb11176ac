// @vitest-environment happy-dom
import { defineService, notification } from '@lockstep/core';
import { cleanup, render, screen, waitFor } from '@testing-library/react';
import { useState } from 'react';
import { afterEach, describe, expect, expectTypeOf, it, onTestFinished } from 'vitest';
import * as z from 'zod';
import { testWorld, withProvider } from './test/world.js';
import { useNotification } from './useNotification.js';

afterEach(cleanup);

const news = defineService('news', '1.0.0', {
  headline: notification({ params: z.object({ text: z.string(), n: z.number().int() }) }),
});

describe('useNotification', () => {
  it("hands the hub's notifications to the latest listener while mounted", async () => {
    const w = testWorld();
    onTestFinished(() => w.close());
    const me = w.connect('me');
    const heard: string[] = [];
    function Headlines({ prefix }: { prefix: string }) {
      const [last, setLast] = useState('none');
      useNotification(news.headline, (params) => {
        expectTypeOf(params).toEqualTypeOf<{ text: string; n: number }>();
        heard.push(`${prefix}${params.text}`);
        setLast(`${params.n}: ${params.text}`);
      });
      return <p data-testid="headline">{last}</p>;
    }
    const { rerender, unmount } = render(<Headlines prefix="a:" />, { wrapper: withProvider(me.client) });
    await waitFor(() => expect(me.client.status.status).toBe('online'));

    expect(w.hub.notify({ clientId: 'me' }, news.headline, { text: 'first', n: 1 })).toBe(true);
    await waitFor(() => expect(screen.getByTestId('headline').textContent).toBe('1: first'));
    // A new listener (a new prop in the closure) is used without listening again.
    rerender(<Headlines prefix="b:" />);
    w.hub.notify({ clientId: 'me' }, news.headline, { text: 'second', n: 2 });
    await waitFor(() => expect(screen.getByTestId('headline').textContent).toBe('2: second'));
    expect(heard).toEqual(['a:first', 'b:second']);

    // Unmounted: it hears nothing more (another listener shows the notification did arrive).
    unmount();
    const arrived = new Promise<void>((resolve) => {
      const stop = me.client.on(news.headline, ({ text }) => {
        if (text !== 'after') return;
        stop();
        resolve();
      });
    });
    w.hub.notify({ clientId: 'me' }, news.headline, { text: 'after', n: 5 });
    await arrived;
    expect(heard).toEqual(['a:first', 'b:second']);
  });
});

import { createMemoryLink } from '@lockstep/core';
import { createClient } from '@lockstep/client';
import { Hub } from '@lockstep/server';
import { counterDomain } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';

const counter = counterDomain;

describe('smoke', () => {
  it('syncs a counter between two clients', async () => {
    const hub = new Hub({ domains: [counter] });
    const connect = () => {
      const link = createMemoryLink();
      hub.accept(link.server);
      return link.client;
    };
    const a = createClient({ connect });
    const b = createClient({ connect });
    const sa = a.stream(counter, 'x');
    const sb = b.stream(counter, 'x');
    await sa.dispatch({ type: 'add', payload: { by: 2 } });
    await sb.dispatch({ type: 'add', payload: { by: 3 } });
    await expect(sa.dispatch({ type: 'add', payload: { by: -10 } })).rejects.toMatchObject({ code: 'COMMAND_REJECTED' });
    await a.whenIdle();
    await b.whenIdle();
    expect(sa.getSnapshot()).toEqual({ n: 5 });
    expect(sb.getSnapshot()).toEqual({ n: 5 });
    expect(sb.getStatus()).toMatchObject({ status: 'online', confirmedVersion: 2, pending: 0 });
    a.close();
    b.close();
    await hub.close();
  });
});

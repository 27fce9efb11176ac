import { createClient, type ExtensionNotification } from '@lockstep/client';
import { LockstepError, TransportError, createMemoryLink, type MemoryLink } from '@lockstep/core';
import { Hub, type ExtensionSession, type HubExtension } from '@lockstep/server';
import { filter, firstValueFrom } from 'rxjs';
import { describe, expect, it } from 'vitest';

/** `echo.say` answers and notifies the caller; `echo.fail` refuses with a documented error. */
const echo: HubExtension = {
  name: 'echo',
  methods: {
    'echo.say': (params, session: ExtensionSession) => {
      session.notify('echo.heard', { params, clientId: session.clientId });
      return { said: params };
    },
    'echo.fail': () => {
      throw new LockstepError('INVALID_PARAMS', 'nothing to echo');
    },
  },
};

describe('client: extension methods and notifications', () => {
  it('calls extension methods, surfaces their notifications and errors, and refuses while disconnected', async () => {
    const hub = new Hub({ domains: [], extensions: [echo] });
    const links: MemoryLink[] = [];
    const client = createClient({
      clientId: 'ext-client',
      backoff: { initialMs: 1, maxMs: 5 },
      connect: () => {
        const link = createMemoryLink();
        hub.accept(link.server);
        links.push(link);
        return link.client;
      },
    });
    const heard: ExtensionNotification[] = [];
    client.notifications$.subscribe((notification) => heard.push(notification));
    const online = () => firstValueFrom(client.status$.pipe(filter(({ status }) => status === 'online')));

    await online();
    await expect(client.request('echo.say', 'hi')).resolves.toEqual({ said: 'hi' });
    expect(heard).toEqual([{ method: 'echo.heard', params: { params: 'hi', clientId: 'ext-client' } }]);

    const refusal = await client.request('echo.fail', {}).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(LockstepError);
    expect((refusal as LockstepError).code).toBe('INVALID_PARAMS');
    const unknown = await client.request('echo.nope', {}).catch((error: unknown) => error);
    expect((unknown as LockstepError).code).toBe('METHOD_NOT_FOUND');
    // The client's own protocol methods are not for callers.
    await expect(client.request('subscribe', { stream: 'x/y' })).rejects.toThrow(RangeError);

    // Between connections a call fails at once (it is not queued); after the reconnect it works again.
    links.at(-1)!.disconnect();
    await expect(client.request('echo.say', 'lost')).rejects.toBeInstanceOf(TransportError);
    await online();
    await expect(client.request('echo.say', 'again')).resolves.toEqual({ said: 'again' });
    expect(heard.map(({ params }) => (params as { params: unknown }).params)).toEqual(['hi', 'again']);
    expect(links).toHaveLength(2);

    client.close();
    await expect(client.request('echo.say', 'closed')).rejects.toBeInstanceOf(TransportError);
    await hub.close();
  });
});

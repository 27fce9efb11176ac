// Test helpers (not exported from the package): a real hub, and clients connected to it through
// in-memory links that a test can slow down, cut and refuse.
import { createClient, type BackoffOptions, type LockstepClient } from '@lockstep/client';
import { builtInDomains, createMemoryLink, type LinkFaults, type MemoryLink } from '@lockstep/core';
import { Hub, MemoryEventStore } from '@lockstep/server';
import type { ReactNode } from 'react';
import { LockstepProvider } from '../LockstepProvider.js';

export interface TestClient {
  client: LockstepClient;
  /** Every link the client dialled, newest last. */
  links: MemoryLink[];
  /** Faults of the next links (and, through `links`, of the current one). */
  faults: LinkFaults;
  /** While set, connection attempts fail (the client stays offline, retrying). */
  refuse: boolean;
}

export function testWorld() {
  const hub = new Hub({ domains: builtInDomains, store: new MemoryEventStore() });
  const clients: TestClient[] = [];
  const connect = (clientId: string, backoff: BackoffOptions = { initialMs: 5, maxMs: 20 }): TestClient => {
    const test: TestClient = { client: undefined as unknown as LockstepClient, links: [], faults: {}, refuse: false };
    test.client = createClient({
      clientId,
      backoff,
      connect: () => {
        if (test.refuse) throw new Error('connection refused (test)');
        const link = createMemoryLink({ faults: { ...test.faults } });
        hub.accept(link.server);
        test.links.push(link);
        return link.client;
      },
    });
    clients.push(test);
    return test;
  };
  const close = async () => {
    for (const { client } of clients) client.close();
    await hub.close();
  };
  return { hub, connect, close };
}

/** A render wrapper with the provider. */
export function withProvider(client: LockstepClient, releaseUnusedStreamsAfterMs?: number) {
  return ({ children }: { children: ReactNode }) =>
    releaseUnusedStreamsAfterMs === undefined ? (
      <LockstepProvider client={client}>{children}</LockstepProvider>
    ) : (
      <LockstepProvider client={client} releaseUnusedStreamsAfterMs={releaseUnusedStreamsAfterMs}>
        {children}
      </LockstepProvider>
    );
}

import { LockstepError } from '@lockstep/core';
import { Hub, MemoryEventStore, type Commit, type StoredEvent } from '@lockstep/server';
import { counterDomain } from '@lockstep/testkit';
import { describe, expect, it } from 'vitest';

/** A store that can be taken down and brought back, like a database restarting. */
class FlakyStore extends MemoryEventStore {
  down = false;
  #check(): void {
    if (this.down) throw new Error('connection refused');
  }
  override async append(stream: string, expectedHead: number, commits: readonly Commit[]): Promise<void> {
    this.#check();
    return super.append(stream, expectedHead, commits);
  }
  override async read(stream: string, from: number, limit: number): Promise<StoredEvent[]> {
    this.#check();
    return super.read(stream, from, limit);
  }
  override async loadSnapshot(stream: string) {
    this.#check();
    return super.loadSnapshot(stream);
  }
}

const add = (id: string, by = 1) => ({ id, stream: 'counter/x', type: 'add', payload: { by } });

describe('a store outage', () => {
  it('answers UNAVAILABLE while the store is down and serves again once it is back, on a loaded stream', async () => {
    const store = new FlakyStore();
    const hub = new Hub({ domains: [counterDomain], store, onError: () => {} });
    await hub.execute(add('c1'));
    store.down = true;
    await expect(hub.execute(add('c2'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(hub.execute(add('c3'))).rejects.toBeInstanceOf(LockstepError);
    store.down = false;
    await expect(hub.execute(add('c4'))).resolves.toMatchObject({ version: 2 });
    // A retry of a command refused as UNAVAILABLE is applied once the store is back.
    await expect(hub.execute(add('c2'))).resolves.toMatchObject({ version: 3, id: 'c2' });
    expect(await hub.read('counter/x')).toEqual({ state: { n: 3 }, version: 3 });
    await hub.close();
  });

  it('loads a stream whose first load failed once the store is back', async () => {
    const store = new FlakyStore();
    await store.append('counter/x', 0, [{ commandId: 'old', fingerprint: 'f', events: [{ version: 1, type: 'added', data: { by: 5 }, time: 0 }] }]);
    store.down = true;
    const hub = new Hub({ domains: [counterDomain], store, onError: () => {} });
    await expect(hub.read('counter/x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    await expect(hub.execute(add('c1'))).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    store.down = false;
    await expect(hub.execute(add('c1'))).resolves.toMatchObject({ version: 2 });
    expect(await hub.read('counter/x')).toEqual({ state: { n: 6 }, version: 2 });
    await hub.close();
  });
});

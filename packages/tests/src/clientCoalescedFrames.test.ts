import { createClient } from '@lockstep/client';
import { createMemoryLink, type Frame, type Transport, type TransportState } from '@lockstep/core';
import { Hub } from '@lockstep/server';
import { Subject, filter, firstValueFrom, type Observable } from 'rxjs';
import { counterDomain } from '@lockstep/testkit';
import { describe, expect, it, onTestFinished } from 'vitest';

/**
 * Over a real socket, frames the hub sent in different turns of its event loop can reach the client
 * in one read, and `ws` then emits them one after another in the same turn. The in-memory link never
 * does that (one microtask per frame), so these cases hold the hub's frames back and release them
 * together, synchronously, as a TCP read would.
 */

const counter = counterDomain;

/** The client end of a memory link whose incoming frames can be held and released in one burst. */
class Coalescing implements Transport {
  readonly #out = new Subject<Frame>();
  readonly frames: Observable<Frame> = this.#out.asObservable();
  readonly state: Observable<TransportState>;
  readonly held: Frame[] = [];
  holding = false;

  constructor(private readonly inner: Transport) {
    this.state = inner.state;
    inner.frames.subscribe({
      next: (frame) => (this.holding ? this.held.push(frame) : this.#out.next(frame)),
      complete: () => this.#out.complete(),
    });
  }

  /** Delivers every held frame now, in order, in the same turn. */
  release(): void {
    this.holding = false;
    for (const frame of this.held.splice(0)) this.#out.next(frame);
  }

  send(frame: Frame): boolean {
    return this.inner.send(frame);
  }

  close(reason?: string): void {
    this.inner.close(reason);
  }
}

const text = (frame: Frame) => (typeof frame === 'string' ? frame : '');

describe('client: frames coalesced into one read', () => {
  it('applies an events notification that arrives in the same read as the subscribe answer before it', async () => {
    const hub = new Hub({ domains: [counter] });
    onTestFinished(() => hub.close());
    await hub.execute({ id: 'before-1', stream: 'counter/x', type: 'add', payload: { by: 1 } });
    let tap: Coalescing | undefined;
    const client = createClient({
      connect: () => {
        const link = createMemoryLink();
        hub.accept(link.server);
        tap = new Coalescing(link.client);
        return tap;
      },
    });
    onTestFinished(() => client.close());
    await firstValueFrom(client.status$.pipe(filter((status) => status.status === 'online')));

    // Hold everything from the hub from the subscribe on: its answer, then a live event after it.
    tap!.holding = true;
    const stream = client.stream(counter, 'x');
    await until(() => tap!.held.some((frame) => text(frame).includes('"result":{"stream":"counter/x"')));
    await hub.execute({ id: 'after-1', stream: 'counter/x', type: 'add', payload: { by: 10 } });
    await until(() => tap!.held.some((frame) => text(frame).includes('"method":"events"')));
    tap!.release();

    await client.whenIdle();
    expect(stream.confirmed).toEqual({ state: { n: 11 }, version: 2 });
    expect(stream.getStatus()).toMatchObject({ confirmedVersion: 2, serverVersion: 2, lag: 0 });
  });
});

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}

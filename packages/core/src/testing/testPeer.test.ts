import { describe, expect, it } from 'vitest';
import { jsonCodec } from '../codec.js';
import { LockstepError, TransportError } from '../errors.js';
import { createMemoryLink } from '../memoryTransport.js';
import { msgpackCodec } from '../msgpack.js';
import { FakeClock } from './fakeClock.js';
import { TestPeer } from './testPeer.js';

/** A TestPeer on each end of a memory link: one plays the server. */
function pair(codec = jsonCodec) {
  const link = createMemoryLink();
  return { client: new TestPeer(link.client, { codec }), server: new TestPeer(link.server, { codec }), link };
}

describe('TestPeer', () => {
  for (const codec of [jsonCodec, msgpackCodec]) {
    it(`sends requests and notifications and records what arrives, batches flattened (${codec.name})`, async () => {
      const { client, server } = pair(codec);
      const answered = client.request('add', { a: 1, b: 2 });
      const call = await server.incoming('add');
      expect(call).toEqual({ jsonrpc: '2.0', id: 1, method: 'add', params: { a: 1, b: 2 } });
      server.send([
        { jsonrpc: '2.0', method: 'note', params: { n: 1 } },
        { jsonrpc: '2.0', id: call.id, result: 3 },
      ]);
      expect(await answered).toBe(3);
      expect(client.received).toEqual([
        { jsonrpc: '2.0', method: 'note', params: { n: 1 } },
        { jsonrpc: '2.0', id: 1, result: 3 },
      ]);
      expect({ frames: client.frames, batches: client.batches }).toEqual({ frames: 1, batches: 1 });
      expect(client.notifications('note')).toHaveLength(1);
      client.notify('bye');
      expect(await server.next()).toMatchObject({ method: 'add' });
      expect(await server.next()).toEqual({ jsonrpc: '2.0', method: 'bye' });
      expect(server.unread).toBe(0);
    });
  }

  it('rejects a request answered with an error with the LockstepError, and call answers the whole response', async () => {
    const { client, server } = pair();
    const refused = client.request('nope');
    const id = (await server.incoming('nope')).id;
    server.send({ jsonrpc: '2.0', id, error: { code: -32601, message: 'method not found', data: { method: 'nope' } } });
    const error = await refused.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockstepError);
    expect(error).toMatchObject({ code: 'METHOD_NOT_FOUND', data: { method: 'nope' } });
    const whole = client.call('x', [1]);
    server.send({ jsonrpc: '2.0', id: (await server.incoming('x')).id, result: null });
    expect(await whole).toEqual({ jsonrpc: '2.0', id: 2, result: null });
  });

  it('fails a wait when the transport closes, and records frames that do not decode', async () => {
    const { client, server, link } = pair();
    link.server.send('not json');
    const waiting = client.waitFor((message) => message.method === 'never');
    await client.until(() => client.problems.length === 1);
    expect(client.problems[0]).toMatchObject({ code: 'PARSE_ERROR' });
    server.close('done');
    await expect(waiting).rejects.toThrow(TransportError);
    await expect(waiting).rejects.toThrow('closed (done) before a matching message arrived');
    expect((await client.closed).reason).toBe('done');
    await expect(client.next()).rejects.toThrow('before the next message arrived');
  });

  it('fails a wait after timeoutMs on its clock', async () => {
    const clock = new FakeClock();
    const link = createMemoryLink();
    const peer = new TestPeer(link.client, { clock, timeoutMs: 100 });
    const waiting = peer.response(7).catch((error: unknown) => error);
    await clock.advance(100);
    expect(await waiting).toBeInstanceOf(TransportError);
    expect(await waiting).toHaveProperty('message', 'the response to 7 did not arrive within 100 ms (0 messages received)');
    link.disconnect();
  });
});

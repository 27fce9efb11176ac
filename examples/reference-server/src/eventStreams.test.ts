import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { SseReader, TEST_TOKEN, call, startTestServer, until } from './testing.js';

const json = (body: unknown) => ({ body });
const versionsOf = (reader: SseReader) => reader.events.map((event: { version: number }) => event.version);

describe('Server-Sent Events', () => {
  it("streams a stream's events live, each with its version as the event id", async () => {
    const server = await startTestServer({ terminals: false });
    await call(server.url, 'POST', '/api/tasks', json({ id: 't1', title: 'Before' }));
    const reader = new SseReader(server.url, '/api/streams/tasks/default/events?since=0');
    await reader.opened();
    expect(reader.status).toBe(200);
    expect(reader.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(reader.headers['cache-control']).toBe('no-store, no-transform');
    await reader.waitFor((r) => r.events.length === 1, 'the event already in the stream');

    await call(server.url, 'PATCH', '/api/tasks/t1', json({ status: 'completed' }));
    await call(server.url, 'POST', '/api/sessions/s1');
    await reader.waitFor((r) => r.events.length === 3, 'the live events');
    expect(reader.messages.map((m) => m.id)).toEqual(['1', '2', '3']);
    expect(reader.events.map((e: { type: string }) => e.type)).toEqual(['task.created', 'task.updated', 'session.created']);
    expect(reader.events[1]).toMatchObject({
      version: 2,
      type: 'task.updated',
      data: { id: 't1', changes: { status: 'completed' } },
      time: expect.any(Number),
      commandId: expect.stringMatching(/^rest:/),
    });
  });

  it('starts the stream route with a snapshot, then its later events', async () => {
    const server = await startTestServer({ terminals: false });
    await call(server.url, 'PUT', '/api/orchestration/workspaces/ws-a/desired', json({ desired: 2 }));
    const reader = new SseReader(server.url, '/api/streams/orchestration%2Fdefault');
    await reader.waitFor((r) => r.messages.length === 1, 'the snapshot');
    expect(reader.messages[0]).toEqual({
      id: '1',
      event: 'snapshot',
      data: {
        stream: 'orchestration/default',
        version: 1,
        state: { workspaces: { 'ws-a': expect.objectContaining({ desired: 2 }) }, totals: { desired: 2, running: 0 } },
      },
    });
    await call(server.url, 'PUT', '/api/orchestration/workspaces/ws-b/desired', json({ desired: 3 }));
    await reader.waitFor((r) => r.events.length === 1, 'the next event');
    expect(reader.events[0]).toMatchObject({ version: 2, type: 'workspace.desiredSet', data: { workspaceId: 'ws-b', desired: 3 } });
  });

  it('resumes after a disconnect with Last-Event-ID: exactly the missed events, then live', async () => {
    const server = await startTestServer({ terminals: false });
    const first = new SseReader(server.url, '/api/streams/tasks/default/events');
    await first.opened();
    await call(server.url, 'POST', '/api/tasks', json({ id: 't1', title: 'One' }));
    await call(server.url, 'POST', '/api/tasks', json({ id: 't2', title: 'Two' }));
    await first.waitFor((r) => r.events.length === 2, 'two events');
    first.close();

    // Missed while disconnected.
    await call(server.url, 'POST', '/api/tasks', json({ id: 't3', title: 'Three' }));
    await call(server.url, 'DELETE', '/api/tasks/t1');
    const resumed = new SseReader(server.url, '/api/streams/tasks/default/events?since=0', { 'Last-Event-ID': first.messages.at(-1)!.id! });
    await resumed.waitFor((r) => r.events.length === 2, 'the missed events');
    expect(versionsOf(resumed)).toEqual([3, 4]);
    await call(server.url, 'POST', '/api/tasks', json({ id: 't4', title: 'Four' }));
    await resumed.waitFor((r) => r.events.length === 3, 'a live event');
    expect(versionsOf(resumed)).toEqual([3, 4, 5]);

    // On the snapshot route, Last-Event-ID resumes with events instead of a new snapshot.
    const snapshotResume = new SseReader(server.url, '/api/streams/tasks/default', { 'Last-Event-ID': '4' });
    await snapshotResume.waitFor((r) => r.events.length === 1, 'the missed event');
    expect(snapshotResume.messages.map((m) => [m.event, m.id])).toEqual([['message', '5']]);

    const bad = await call(server.url, 'GET', '/api/streams/tasks/default/events', { headers: { Accept: 'text/event-stream', 'Last-Event-ID': 'last' } });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('INVALID_PARAMS');
  });

  it('answers an unknown stream with a JSON error before any event', async () => {
    const server = await startTestServer({ terminals: false });
    const answer = await call(server.url, 'GET', '/api/streams/nope/key/events', { headers: { Accept: 'text/event-stream' } });
    expect(answer.status).toBe(404);
    expect(answer.json.error.code).toBe('UNKNOWN_STREAM');
  });

  it('sends heartbeats and releases everything when the client goes away', async () => {
    const server = await startTestServer({ terminals: false, eventStreams: { heartbeatMs: 20 } });
    const connections = server.hub.connectionCount;
    const reader = new SseReader(server.url, '/api/streams/focus/default/events');
    await reader.waitFor((r) => r.comments >= 2, 'two heartbeats');
    expect(server.eventStreams()).toHaveLength(1);
    expect(server.hub.connectionCount).toBe(connections + 1);
    reader.close();
    await until(() => server.eventStreams().length === 0 && server.hub.connectionCount === connections, 'the stream and its hub connection to close');
  });

  it('ends open streams when the server closes', async () => {
    const server = await startTestServer({ terminals: false });
    const reader = new SseReader(server.url, '/api/streams/tasks/default/events');
    await reader.opened();
    await server.close();
    await reader.waitFor((r) => r.ended, 'the response to end');
  });

  it('holds at most the high-water mark for a reader that stops reading, and it still misses nothing', async () => {
    const highWaterBytes = 64 * 1024;
    const server = await startTestServer({ terminals: false, store: 'memory', eventStreams: { highWaterBytes } });
    await server.hub.execute({ id: 'c0', stream: 'tasks/default', type: 'task.create', payload: { id: 't', title: 'Big' } });

    const port = Number(new URL(server.url).port);
    const socket = connect(port, '127.0.0.1');
    socket.pause(); // never reads until told to
    socket.write(
      `GET /api/streams/tasks/default/events?since=0 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    await until(() => server.eventStreams().length === 1, 'the stream to open');

    // ~30 MB of events, far beyond what the kernel's socket buffers hold.
    const updates = 1500;
    const description = (n: number) => `${n} `.padEnd(20_000, 'x');
    let largest = 0;
    for (let n = 1; n <= updates; n++) {
      await server.hub.execute({ id: `c${n}`, stream: 'tasks/default', type: 'task.update', payload: { id: 't', description: description(n) } });
      largest = Math.max(largest, server.eventStreams()[0]!.bufferedBytes);
    }
    // One event is about 20 KB: the buffer never exceeds the mark by more than the batch that crossed it.
    expect(largest).toBeGreaterThan(highWaterBytes);
    expect(largest).toBeLessThan(highWaterBytes + 2 * 21_000);

    // A reader that asks for the whole history and does not read is held to the same bound: the
    // catch-up page is written only as far as the mark.
    const late = connect(port, '127.0.0.1');
    late.pause();
    late.write(
      `GET /api/streams/tasks/default/events?since=0 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nAccept: text/event-stream\r\n\r\n`,
    );
    await until(() => server.eventStreams().length === 2 && server.eventStreams()[1]!.bufferedBytes > highWaterBytes, 'the late reader to fill up');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(server.eventStreams()[1]!.bufferedBytes).toBeLessThan(highWaterBytes + 2 * 21_000);
    late.destroy();

    // Reading again, the client gets every event, in order, without a gap.
    const ids: number[] = [];
    let tail = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      const lines = (tail + chunk).split('\n');
      tail = lines.pop()!;
      for (const line of lines) if (line.startsWith('id: ')) ids.push(Number(line.slice(4)));
    });
    socket.resume();
    await until(() => ids.at(-1) === updates + 1, 'every event', 30_000);
    expect(ids).toEqual(Array.from({ length: updates + 1 }, (_, i) => i + 1));
    socket.destroy();
  });
});

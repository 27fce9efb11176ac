import { readFileSync } from 'node:fs';
import { builtInDomains, type Clock } from '@lockstep/core';
import { Hub, MemoryEventStore } from '@lockstep/server';
import { createWebSocketServer } from '@lockstep/ws/server';
import { describe, expect, it, onTestFinished } from 'vitest';
import { RawPeer } from './wsPeer.js';

/**
 * lockstep/1 spoken over a plain `ws` socket with no Lockstep client code: what a Python or Rust
 * peer does. The exchange is the one shown verbatim in docs/protocol.md, "A session on the wire
 * (WebSocket)"; this test fails when the two differ.
 */

const NOW = 1717171717000;
/** A clock stopped at NOW (so `time` fields are stable) with real timers. */
const stoppedClock: Clock = {
  now: () => NOW,
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

class FixedEpochStore extends MemoryEventStore {
  override readonly epoch = '3d0f8b1e-6a2c-4f57-9e1d-b4c3a2f1e0d9';
}

/** sessionId is random per connection: the transcript shows fixed stand-ins, in order of appearance. */
const SESSION_STAND_INS = ['8a1f3c5e-2b4d-4e6f-8a0b-1c2d3e4f5a6b', 'c7d9e1f3-5a7b-4c9d-8e0f-2a4b6c8d0e1f'];

const DOC_PATH = new URL('../../../docs/protocol.md', import.meta.url);
const DOC_SECTION = '## A session on the wire (WebSocket)';

describe('raw lockstep/1 over WebSocket (no Lockstep client code)', () => {
  it('hello, subscribe, command, events, reconnect with since: exactly the missed events', async () => {
    const hub = new Hub({ domains: builtInDomains, store: new FixedEpochStore(), clock: stoppedClock, serverId: 'hub-1' });
    const wsServer = createWebSocketServer(hub, { port: 0 });
    onTestFinished(async () => {
      await hub.close();
      await wsServer.close();
    });
    await wsServer.ready;
    const url = `ws://127.0.0.1:${wsServer.address().port}`;
    const stream = 'tasks/proj_1';

    // First connection: hello, subscribe (an empty stream: a snapshot), one command.
    const first = await RawPeer.connect(url, ['lockstep.v1.json']);
    expect(first.socket.protocol).toBe('lockstep.v1.json');
    const hello = await first.call('hello', { protocol: 1, clientId: 'py-agent-1' });
    expect(hello.result).toMatchObject({ protocol: 1, serverId: 'hub-1', epoch: '3d0f8b1e-6a2c-4f57-9e1d-b4c3a2f1e0d9', heartbeatMs: 15000 });
    const subscribed = await first.call('subscribe', { stream });
    expect(subscribed.result).toEqual({ stream, version: 0, head: 0, oldestRetained: 1, snapshot: { tasks: {}, sessions: {} } });
    const created = await first.response(
      first.request('command', { id: 'py-agent-1:1', stream, type: 'task.create', payload: { id: 'task_1', title: 'Write the wire guide' } }),
    );
    // Events before the ack, on the same socket.
    expect(created.before).toHaveLength(1);
    expect(created.before[0]).toMatchObject({
      method: 'events',
      params: { stream, events: [{ version: 1, type: 'task.created', commandId: 'py-agent-1:1' }] },
    });
    expect(created.response.result).toEqual({ id: 'py-agent-1:1', stream, version: 1 });
    expect(await first.close()).toEqual({ code: 1000, reason: 'bye' });

    // While it is away, another raw client commits versions 2 and 3.
    const other = await RawPeer.connect(url);
    await other.call('hello', { protocol: 1, clientId: 'rs-manager' });
    expect((await other.call('command', { id: 'rs-manager:1', stream, type: 'task.update', payload: { id: 'task_1', status: 'in_progress' } })).result).toEqual(
      { id: 'rs-manager:1', stream, version: 2 },
    );
    expect(
      (await other.call('command', { id: 'rs-manager:2', stream, type: 'session.create', payload: { id: 'agent-1', name: 'Claude', kind: 'agent' } })).result,
    ).toEqual({ id: 'rs-manager:2', stream, version: 3 });
    await other.close();

    // Reconnect: a new socket, hello again, subscribe with since = the last version applied.
    const second = await RawPeer.connect(url, ['lockstep.v1.json']);
    await second.call('hello', { protocol: 1, clientId: 'py-agent-1' });
    const resumed = await second.call('subscribe', { stream, since: 1 });
    expect(resumed.result).toMatchObject({ stream, version: 3, head: 3, oldestRetained: 1 });
    expect(resumed.result.events.map((event: { version: number; commandId: string }) => [event.version, event.commandId])).toEqual([
      [2, 'rs-manager:1'],
      [3, 'rs-manager:2'],
    ]);
    expect(resumed.result).not.toHaveProperty('snapshot');
    // Live again: a command of its own is broadcast to it as version 4, then acknowledged.
    const live = await second.response(
      second.request('command', { id: 'py-agent-1:2', stream, type: 'session.addTask', payload: { sessionId: 'agent-1', taskId: 'task_1' } }),
    );
    expect(live.before.map((message) => message.params.events.map((event: { version: number }) => event.version))).toEqual([[4]]);
    expect(live.response.result).toEqual({ id: 'py-agent-1:2', stream, version: 4 });
    await second.close();
    expect(second.unread).toBe(0);

    // The same frames, verbatim, are the example in docs/protocol.md.
    const transcript = renderTranscript([first.log, second.log]);
    const documented = documentedTranscript();
    expect(documented, `docs/protocol.md, "${DOC_SECTION}", must show exactly:\n\n${transcript}`).toBe(transcript);
  });
});

function renderTranscript(connections: Array<RawPeer['log']>): string {
  const sessions = new Map<string, string>();
  const lines: string[] = [];
  connections.forEach((log, index) => {
    lines.push(index === 0 ? '# first connection' : '# reconnect: a new socket; meanwhile another client committed versions 2 and 3');
    for (const { direction, frame } of log) {
      let text = typeof frame === 'string' ? frame : '<binary>';
      text = text.replace(/"sessionId":"([0-9a-f-]{36})"/g, (_, id: string) => {
        if (!sessions.has(id)) sessions.set(id, SESSION_STAND_INS[sessions.size] ?? id);
        return `"sessionId":"${sessions.get(id)}"`;
      });
      lines.push(`${direction} ${text}`);
    }
  });
  return lines.join('\n');
}

/** The first code block after the section heading. */
function documentedTranscript(): string {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const start = doc.indexOf(`\n${DOC_SECTION}\n`);
  if (start === -1) return '(section missing)';
  const open = doc.indexOf('```text\n', start);
  const close = doc.indexOf('\n```', open + 8);
  return open === -1 || close === -1 ? '(code block missing)' : doc.slice(open + 8, close);
}

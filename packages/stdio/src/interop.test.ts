/**
 * vscode-jsonrpc as an independent peer, both ways: its client drives a Lockstep hub served over a
 * child's stdio, and Lockstep's client talks to a server written with it. Proves the framing is
 * byte-compatible in both directions.
 */
import { createClient } from '@lockstep/client';
import { ErrorCodes, tasksDomain, type Event } from '@lockstep/core';
import { filter, firstValueFrom } from 'rxjs';
import { ResponseError, StreamMessageReader, StreamMessageWriter, createMessageConnection, type MessageConnection } from 'vscode-jsonrpc/node';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { fixtures, killStarted, spawnNode, spawnRelay, tsArgs } from '../test/processes.js';
import { createStdioTransport } from './stdioTransport.js';

afterEach(killStarted);

interface EventsParams {
  stream: string;
  events: Event[];
}

describe('a vscode-jsonrpc client driving a Lockstep hub in a child process', () => {
  function connectToHubChild(): { connection: MessageConnection; notifications: EventsParams[]; next(): Promise<EventsParams> } {
    const child = spawnNode(tsArgs(fixtures.hubChild));
    const connection = createMessageConnection(new StreamMessageReader(child.stdout), new StreamMessageWriter(child.stdin));
    const notifications: EventsParams[] = [];
    const waiting: Array<(params: EventsParams) => void> = [];
    connection.onNotification('events', (params: EventsParams) => {
      notifications.push(params);
      waiting.shift()?.(params);
    });
    connection.listen();
    onTestFinished(() => connection.dispose());
    return { connection, notifications, next: () => new Promise((resolve) => waiting.push(resolve)) };
  }

  it('says hello, subscribes, sends a command, and receives the events notification and the ack', async () => {
    const { connection, next } = connectToHubChild();
    const hello = await connection.sendRequest<{ protocol: number; domains: string[]; epoch: string }>('hello', { protocol: 1, clientId: 'vscode-peer' });
    expect(hello.protocol).toBe(1);
    expect(hello.domains).toEqual(expect.arrayContaining(['tasks', 'focus', 'orchestration']));
    expect(typeof hello.epoch).toBe('string');

    const subscribed = await connection.sendRequest('subscribe', { stream: 'tasks/interop' });
    expect(subscribed).toMatchObject({ stream: 'tasks/interop', version: 0, head: 0 });

    const events = next();
    const title = 'Ünïcödé 日本語 🚀 "quoted" \r\n Content-Length: 3';
    const ack = await connection.sendRequest('command', {
      id: 'vscode-cmd-1',
      stream: 'tasks/interop',
      type: 'task.create',
      payload: { id: 'task-1', title },
    });
    expect(ack).toEqual({ id: 'vscode-cmd-1', stream: 'tasks/interop', version: 1 });
    const notification = await events;
    expect(notification.stream).toBe('tasks/interop');
    expect(notification.events).toHaveLength(1);
    expect(notification.events[0]).toMatchObject({ version: 1, type: 'task.created', commandId: 'vscode-cmd-1', data: { id: 'task-1', title } });

    const pong = await connection.sendRequest<{ time: number }>('ping', {});
    expect(typeof pong.time).toBe('number');
  });

  it('gets error responses with the documented codes for bad requests, and the session goes on', async () => {
    const { connection, notifications } = connectToHubChild();
    const codeOf = async (method: string, params: unknown) => {
      try {
        await connection.sendRequest(method, params);
      } catch (error) {
        expect(error).toBeInstanceOf(ResponseError);
        return { code: (error as ResponseError<unknown>).code, data: (error as ResponseError<unknown>).data };
      }
      throw new Error(`${method} succeeded`);
    };

    expect((await codeOf('subscribe', { stream: 'tasks/early' })).code).toBe(ErrorCodes.HANDSHAKE_REQUIRED);
    expect((await codeOf('hello', { protocol: 99 })).code).toBe(ErrorCodes.UNSUPPORTED_PROTOCOL);
    await connection.sendRequest('hello', { protocol: 1 });
    await connection.sendRequest('subscribe', { stream: 'tasks/errors' });

    const rejected = await codeOf('command', { id: 'bad-1', stream: 'tasks/errors', type: 'task.delete', payload: { id: 'missing' } });
    expect(rejected.code).toBe(ErrorCodes.COMMAND_REJECTED);
    expect(rejected.data).toMatchObject({ reason: 'task.notFound' });
    expect((await codeOf('command', { id: 'bad-2', stream: 'tasks/errors', type: 'task.create', payload: { title: 42 } })).code).toBe(
      ErrorCodes.INVALID_PARAMS,
    );
    expect((await codeOf('command', { id: 'bad-3', stream: 'nowhere/x', type: 'task.create', payload: {} })).code).toBe(ErrorCodes.UNKNOWN_STREAM);
    expect((await codeOf('frobnicate', {})).code).toBe(ErrorCodes.METHOD_NOT_FOUND);

    // Nothing was applied: the next command gets version 1.
    const ack = await connection.sendRequest('command', { id: 'good-1', stream: 'tasks/errors', type: 'task.create', payload: { title: 'fine' } });
    expect(ack).toMatchObject({ version: 1 });
    expect(notifications.flatMap((params) => params.events.map((event) => event.version))).toEqual([1]);
  });
});

describe('a Lockstep client talking to a vscode-jsonrpc server', () => {
  it('connects, subscribes, dispatches, and ends with the state the server announced', async () => {
    // Real OS pipes between the two, through relay processes; both peers live in this process.
    const up = spawnRelay();
    const down = spawnRelay();
    const server = createMessageConnection(new StreamMessageReader(up.stdout), new StreamMessageWriter(down.stdin));
    const seen: string[] = [];
    let version = 0;
    server.onRequest('hello', (params: { protocol: number; clientId?: string }) => {
      seen.push(`hello ${params.protocol}`);
      return {
        protocol: 1,
        serverId: 'vscode-jsonrpc-server',
        sessionId: 'session-1',
        epoch: 'epoch-1',
        capabilities: {},
        heartbeatMs: 0,
        domains: ['tasks'],
      };
    });
    server.onRequest('subscribe', (params: { stream: string; since?: number }) => {
      seen.push(`subscribe ${params.stream}`);
      return { stream: params.stream, version, head: version, oldestRetained: 1, events: [] };
    });
    server.onRequest('command', (params: { id: string; stream: string; type: string; payload: { id?: string; title: string } }) => {
      seen.push(`command ${params.type}`);
      version++;
      const data = { id: params.payload.id ?? 'generated', title: params.payload.title, description: '', status: 'pending', priority: 'medium', at: 1_000 };
      // Events before the ack, as a Lockstep hub does.
      void server.sendNotification('events', {
        stream: params.stream,
        events: [{ version, type: 'task.created', data, time: 1_000, commandId: params.id }],
      });
      return { id: params.id, stream: params.stream, version };
    });
    server.onRequest('ping', () => ({ time: 1 }));
    server.listen();
    onTestFinished(() => server.dispose());

    const client = createClient({ connect: () => createStdioTransport({ input: down.stdout, output: up.stdin }) });
    onTestFinished(() => client.close());
    const stream = client.stream(tasksDomain, 'p1');
    await client.whenIdle();
    const title = 'from Lockstep — ünï 日本 🚀';
    await stream.dispatch({ type: 'task.create', payload: { id: 'task-1', title } });

    expect(seen).toEqual(['hello 1', 'subscribe tasks/p1', 'command task.create']);
    expect(stream.confirmed.version).toBe(1);
    expect(stream.confirmed.state.tasks['task-1']).toMatchObject({ id: 'task-1', title, status: 'pending' });
    expect(client.status.serverId).toBe('vscode-jsonrpc-server');
  });

  it('sees a refused hello as the error the server sent', async () => {
    const up = spawnRelay();
    const down = spawnRelay();
    const server = createMessageConnection(new StreamMessageReader(up.stdout), new StreamMessageWriter(down.stdin));
    server.onRequest('hello', () => new ResponseError(ErrorCodes.UNSUPPORTED_PROTOCOL, 'protocol 1 is not supported', { supported: [2] }));
    server.listen();
    onTestFinished(() => server.dispose());

    const client = createClient({ connect: () => createStdioTransport({ input: down.stdout, output: up.stdin }), backoff: { initialMs: 60_000 } });
    onTestFinished(() => client.close());
    const offline = await firstValueFrom(client.status$.pipe(filter((status) => status.status === 'offline')));
    expect(offline.lastError).toMatchObject({ code: 'UNSUPPORTED_PROTOCOL', data: { supported: [2] } });
  });
});

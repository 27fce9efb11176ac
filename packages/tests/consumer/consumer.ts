// Type-checked in the smoke project against the installed declarations (strict,
// exactOptionalPropertyTypes, skipLibCheck off): what a TypeScript user of the tarballs sees. Never run.
import { parseServeOptions, type ServeOptions } from '@lockstep/cli';
import { createClient, type LockstepClient, type StreamStatus } from '@lockstep/client';
import {
  LockstepError,
  builtInDomains,
  defineDomain,
  reject,
  tasksDomain,
  type Frame,
  type StateOf,
  type Transport,
  type TransportState,
} from '@lockstep/core';
import { msgpackCodec } from '@lockstep/core/msgpack';
import { PostgresEventStore } from '@lockstep/postgres';
import { createTerminalExtension } from '@lockstep/pty';
import { TerminalMethods, attachParamsSchema, type AttachParams } from '@lockstep/pty/protocol';
import { LockstepProvider, useCommand, useConnectionStatus, useStream } from '@lockstep/react';
import { FileEventStore, Hub, MemoryEventStore, type EventStore } from '@lockstep/server';
import { createSidecar, createStdioTransport, serveStdio } from '@lockstep/stdio';
import { FakeClock, counterDomain, runChaos, type ChaosScenario } from '@lockstep/testkit';
import { webSocketConnector, webSocketTransport } from '@lockstep/ws';
import { createWebSocketServer } from '@lockstep/ws/server';
import { createElement, type ReactElement } from 'react';
import { BehaviorSubject, Subject } from 'rxjs';
import { z } from 'zod';

// A user's own domain, with the user's zod: payloads and state are inferred.
const pollDomain = defineDomain({
  name: 'poll',
  initialState: () => ({ votes: {} as Record<string, 'yes' | 'no'> }),
  commands: { 'poll.vote': z.strictObject({ voter: z.string(), choice: z.enum(['yes', 'no']) }) },
  events: { 'poll.voted': z.object({ voter: z.string(), choice: z.enum(['yes', 'no']) }) },
  decide: {
    'poll.vote': ({ voter, choice }, state) => {
      if (state.votes[voter] === choice) reject('poll.same', 'already voted that way');
      return [{ type: 'poll.voted', data: { voter, choice } }];
    },
  },
  evolve: {
    'poll.voted': (draft, { voter, choice }) => {
      draft.votes[voter] = choice;
    },
  },
});
const pollState: StateOf<typeof pollDomain> = pollDomain.initialState();
const choice: 'yes' | 'no' | undefined = pollState.votes['someone'];

const store: EventStore = new MemoryEventStore();
const hub = new Hub({ domains: [...builtInDomains, pollDomain], store });
const server = createWebSocketServer(hub, { port: 0 });
serveStdio(hub);

const client: LockstepClient = createClient({ connect: webSocketConnector('ws://127.0.0.1:7420', { codec: msgpackCodec }), codec: msgpackCodec });
const board = client.stream(tasksDomain, 'proj_1');
const titles: string[] = Object.values(board.getSnapshot().tasks).map((task) => task.title);
const status: StreamStatus = board.getStatus();
void board.dispatch({ type: 'task.create', payload: { title: 'typed' } });
// @ts-expect-error: not a command of the tasks domain
void board.dispatch({ type: 'task.fly', payload: {} });
void client.stream(pollDomain, 'p').dispatch({ type: 'poll.vote', payload: { voter: 'me', choice: 'yes' } });
// @ts-expect-error: 'maybe' is not a choice
void client.stream(pollDomain, 'p').dispatch({ type: 'poll.vote', payload: { voter: 'me', choice: 'maybe' } });

// A user's own transport, on the user's rxjs.
const frames = new Subject<Frame>();
const state = new BehaviorSubject<TransportState>({ status: 'open' });
const mine: Transport = {
  frames: frames.asObservable(),
  state: state.asObservable(),
  send: (frame) => typeof frame === 'string',
  close: (reason = 'closed') => state.next({ status: 'closed', reason }),
};
hub.accept(mine);
hub.accept(webSocketTransport('ws://127.0.0.1:7420'));
hub.accept(createStdioTransport({ input: process.stdin, output: process.stdout }));

const sidecar = createSidecar({ command: 'lockstep', args: ['serve', '--stdio'] });
const fileStore: Promise<FileEventStore> = FileEventStore.open('./data');
const postgres: Promise<PostgresEventStore> = PostgresEventStore.open({ connectionString: 'postgres://localhost/app' });
const terminals = createTerminalExtension({ hub: () => hub });
const attach: AttachParams = attachParamsSchema.parse({ terminalId: 't1' });
const method: string = TerminalMethods.attach;
const options: ServeOptions = parseServeOptions(['--port', '0']);

const scenario: ChaosScenario = { streams: [{ domain: counterDomain, key: 'a' }], nextCommand: () => ({ type: 'add', payload: { by: 1 } }) };
const chaos = runChaos(scenario, { seed: 1, clients: 2, commands: 10 });
const clock = new FakeClock();

function Board(): ReactElement {
  const count: number = useStream(tasksDomain, 'proj_1', (state) => Object.keys(state.tasks).length);
  const dispatch = useCommand(tasksDomain, 'proj_1');
  const { status } = useConnectionStatus();
  void dispatch({ type: 'task.delete', payload: { id: 'x' } });
  return createElement('p', null, `${status}: ${count}`);
}
const app = createElement(LockstepProvider, { client }, createElement(Board));

const error = new LockstepError('INVALID_PARAMS', 'bad');
export { app, attach, chaos, choice, clock, error, fileStore, method, options, postgres, server, sidecar, status, terminals, titles };

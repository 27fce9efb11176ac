import type { SyncedStream } from '@lockstep/client';
import { LockstepError, TransportError, randomId, type AnyDomain, type CommandOf, type Event } from '@lockstep/core';
import type { CommandOperation, Operation, ReadOperation, Report } from './commands/spec.js';
import { ExitCodes } from './exitCodes.js';
import type { HubOptions } from './hubOptions.js';
import { HubFailure, HubGuard, openClient, printFailure, whenSynced, type HubIo } from './hubSession.js';
import { tail } from './tail.js';

/** Runs a parsed client command against the hub; answers the exit code (see exitCodes.ts). */
export async function runClientCommand(operation: Operation, hub: HubOptions, io: HubIo): Promise<number> {
  if (operation.kind === 'watch') return tail(operation.stream, hub, io);
  const client = openClient(hub);
  const stream = client.stream(operation.domain, operation.key);
  const guard = new HubGuard(client, stream, hub, io);
  const interrupted = io.stopSignal.then((signal) => {
    throw new HubFailure(
      ExitCodes.interrupted,
      'INTERRUPTED',
      `interrupted (${signal}) before the hub answered${operation.kind === 'command' ? ': the command may or may not be applied' : ''}`,
    );
  });
  interrupted.catch(() => {});
  try {
    const work = operation.kind === 'command' ? write(operation, stream) : read(operation, stream);
    const report = await Promise.race([work, guard.failed, interrupted]);
    guard.stop();
    printReport(report, hub, guard);
    return ExitCodes.ok;
  } catch (error) {
    guard.stop();
    return printFailure(asFailure(error, operation), hub, io);
  } finally {
    client.close();
  }
}

async function write(operation: CommandOperation, stream: SyncedStream<AnyDomain>): Promise<Report> {
  const commandId = operation.commandId ?? `cli-${randomId(16)}`;
  // In sync first: the subscription's snapshot then precedes the command, whose events arrive one
  // by one after it (a snapshot taken after the command would hold its effect but not its events).
  await whenSynced(stream);
  let events: Event[] | undefined = [];
  const watch = stream.changes$.subscribe((change) => {
    if (change.kind === 'events') events?.push(...change.events.filter((event) => event.commandId === commandId));
    else events = undefined; // a snapshot or a new log after a reconnect: which events were ours is unknown
  });
  try {
    const ack = await stream.dispatch({ type: operation.type, payload: operation.payload } as CommandOf<AnyDomain>, {
      id: commandId,
      ...(operation.expectedVersion === undefined ? {} : { expectedVersion: operation.expectedVersion }),
    });
    // A duplicate answered from the hub's memory: its events were delivered long ago, if at all.
    if (ack.duplicate && events?.length === 0) events = undefined;
    return operation.report({ stream: stream.name, commandId, ack, state: stream.confirmed.state, events });
  } finally {
    watch.unsubscribe();
  }
}

async function read(operation: ReadOperation, stream: SyncedStream<AnyDomain>): Promise<Report> {
  await whenSynced(stream);
  const { confirmed } = stream;
  return operation.report({ stream: stream.name, version: confirmed.version, state: confirmed.state });
}

function asFailure(error: unknown, operation: Operation): HubFailure {
  if (error instanceof HubFailure) {
    if (error.code === 'TIMEOUT' && operation.kind === 'command') {
      return new HubFailure(
        error.exitCode,
        error.code,
        `${error.message}: the command may still be applied (to retry it at most once, pass the same --command-id)`,
      );
    }
    return error;
  }
  if (error instanceof LockstepError) return HubFailure.refusal(error);
  if (error instanceof TransportError) return new HubFailure(ExitCodes.unreachable, 'CONNECT_FAILED', error.message);
  throw error;
}

function printReport(report: Report, hub: HubOptions, guard: HubGuard): void {
  if (hub.json) guard.print(JSON.stringify(report.json));
  else for (const line of report.lines) guard.print(line);
}

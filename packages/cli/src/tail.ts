import { LockstepError, parseStreamName, type Domain, type Event } from '@lockstep/core';
import { ExitCodes } from './exitCodes.js';
import type { HubOptions } from './hubOptions.js';
import { HubFailure, HubGuard, openClient, printFailure, type HubIo } from './hubSession.js';

/**
 * The domain `lockstep watch` opens a stream with: it keeps no state (a tail's memory stays flat
 * however long it runs) and knows no event types, so any stream the hub serves can be watched,
 * user-defined domains included. The client store still does everything else — ordering, gap
 * detection, catch-up after a reconnect — and reports each confirmed event once (`changes$`).
 */
function tailDomain(name: string): Domain<string, null> {
  const noCommands = () => {
    throw new LockstepError('INVALID_PARAMS', 'lockstep watch sends no commands');
  };
  return {
    name,
    commandTypes: [],
    eventTypes: [],
    leases: undefined,
    initialState: () => null,
    parseCommand: noCommands,
    decide: noCommands,
    parseEvent: (_type, data) => data,
    evolve: (state) => state,
    evolveAll: (state) => state,
    eventVersion: () => 1,
    upcast: (_type, _fromVersion, data) => data,
    $types: undefined as never,
  };
}

/** One event as `watch` prints it: `<version> <time> <type> <data as JSON>`, or a JSON line. */
export function formatEvent(stream: string, event: Event, json: boolean): string {
  if (json) return JSON.stringify({ stream, ...event });
  return `${event.version} ${new Date(event.time).toISOString()} ${event.type} ${JSON.stringify(event.data)}`;
}

/**
 * `lockstep watch <stream>`: prints every event committed to the stream after the watch is in sync,
 * each once and in version order — including those committed while the connection was down, once
 * it is back. Runs until SIGINT or SIGTERM (exit code 0).
 */
export async function tail(stream: string, hub: HubOptions, io: HubIo): Promise<number> {
  const { domain, key } = parseStreamName(stream)!;
  const client = openClient(hub);
  const synced = client.stream(tailDomain(domain), key);
  const guard = new HubGuard(client, synced, hub, io);
  /** The last version printed (or skipped as history); undefined until the first sync and after a reset. */
  let cursor: number | undefined;
  let reset = false;

  const changes = synced.changes$.subscribe((change) => {
    if (cursor === undefined) return;
    if (change.kind === 'events') {
      for (const event of change.events) {
        if (event.version <= cursor) continue;
        guard.print(formatEvent(stream, event, hub.json));
        cursor = event.version;
      }
    } else if (change.kind === 'snapshot') {
      if (change.version <= cursor) return;
      // The hub no longer has the events between: say so rather than skip them silently.
      guard.print(
        hub.json
          ? JSON.stringify({ stream, version: change.version, snapshot: change.state })
          : `# snapshot at version ${change.version}: events ${cursor + 1}–${change.version} are no longer kept by the hub`,
      );
      cursor = change.version;
    } else {
      cursor = undefined;
      reset = true;
    }
  });
  const status = synced.status$.subscribe((state) => {
    if (state.status !== 'online' || cursor !== undefined) return;
    cursor = synced.version;
    if (reset) {
      guard.print(
        hub.json ? JSON.stringify({ stream, reset: true, version: cursor }) : `# the hub serves a new log (new epoch): following it from version ${cursor}`,
      );
      reset = false;
    } else {
      guard.disarm();
      guard.note(`watching ${stream} from version ${cursor} (Ctrl-C to stop)`);
    }
  });

  try {
    await Promise.race([io.stopSignal, guard.failed]);
    return ExitCodes.ok;
  } catch (error) {
    if (error instanceof HubFailure) return printFailure(error, hub, io);
    throw error;
  } finally {
    changes.unsubscribe();
    status.unsubscribe();
    guard.stop();
    client.close();
  }
}

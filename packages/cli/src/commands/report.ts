import type { CommandOutcome } from './spec.js';

/** The JSON document of every write: where it landed, its events, then the command's own fields. */
export function writeJson(outcome: CommandOutcome, fields: Record<string, unknown>): Record<string, unknown> {
  return {
    stream: outcome.stream,
    version: outcome.ack.version,
    commandId: outcome.commandId,
    ...(outcome.ack.duplicate ? { duplicate: true } : {}),
    ...fields,
    ...(outcome.events ? { events: outcome.events } : {}),
  };
}

/**
 * A write's line for people: `done` when it changed something (or may have: its events are not
 * known), `unchanged` when the hub found nothing to do, and a note when the command id had already
 * been applied (a retry).
 */
export function writeLine(outcome: CommandOutcome, done: string, unchanged: string): string {
  if (outcome.ack.duplicate) return `${done} (already applied earlier: command id ${outcome.commandId})`;
  return outcome.events && outcome.events.length === 0 ? unchanged : done;
}

/** The events of this command of one type, with their data typed by the caller (none when unknown). */
export function eventsOf<T>(outcome: CommandOutcome, type: string): T[] {
  return (outcome.events ?? []).filter((event) => event.type === type).map((event) => event.data as T);
}

export function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

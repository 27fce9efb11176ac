import { deterministicIds, type AnyDomain, type EventOf, type StateOf } from './domain.js';
import { parseStreamName } from './envelope.js';

export interface ApplyCommandOptions {
  /** The decision time: `ctx.now` and the `time` of every event. */
  now: number;
  /** The version of the state the command applies to; its events get the versions after it. Default 0. */
  version?: number;
  /** The stream, for `ctx.stream` and `ctx.key`. Default `<domain>/default`. */
  stream?: string;
  /** The sending client (`ctx.clientId`): the holder of any lease the command takes. */
  clientId?: string | undefined;
}

export interface AppliedCommand<D extends AnyDomain> {
  state: StateOf<D>;
  /** The version after the command's events (unchanged when it produced none). */
  version: number;
  events: EventOf<D>[];
}

/**
 * Runs one command through a domain the way the hub does, without storage or network: validate
 * the payload, decide, validate the events, evolve. Pure. Throws a `LockstepError` (`INVALID_PARAMS`)
 * for a payload that does not fit the schema and a `DomainRejection` when `decide` rejects; the
 * input state is never changed. Useful to test a domain and to replay commands locally.
 */
export function applyCommand<D extends AnyDomain>(
  domain: D,
  state: StateOf<D>,
  command: { id: string; type: string; payload: unknown },
  options: ApplyCommandOptions,
): AppliedCommand<D> {
  const stream = options.stream ?? `${domain.name}/default`;
  const parsed = parseStreamName(stream);
  if (!parsed || parsed.domain !== domain.name) throw new RangeError(`${stream} is not a stream of domain ${domain.name}`);
  const version = options.version ?? 0;
  const decided = domain.decide(domain.parseCommand(command.type, command.payload), state, {
    stream,
    key: parsed.key,
    commandId: command.id,
    now: options.now,
    clientId: options.clientId,
    newId: deterministicIds(command.id),
  });
  const events = decided.map((event: { type: string; data: unknown }, index: number) => ({
    version: version + index + 1,
    type: event.type,
    data: domain.parseEvent(event.type, event.data),
    time: options.now,
    commandId: command.id,
  })) as EventOf<D>[];
  return { state: domain.evolveAll(state, events), version: version + events.length, events };
}

import type { Draft } from 'immer';
import * as z from 'zod';
import { createDraft, finishDraft, isDraftable } from './draft.js';
import type { Event } from './envelope.js';
import { LockstepError } from './errors.js';
import { hashString } from './hash.js';

/** An event schema with a version: stored events of an older version are upcast on read. */
export interface VersionedEventSchema<S extends z.ZodType = z.ZodType> {
  schema: S;
  /** Current schema version, from 1. */
  version: number;
  /** `upcast[n]` turns data of version n into data of version n + 1. */
  upcast?: Record<number, (data: any) => unknown>;
}

export type EventDefinition = z.ZodType | VersionedEventSchema;

type SchemaOf<D> = D extends VersionedEventSchema<infer S> ? S : D extends z.ZodType ? D : never;

/** What a domain knows about the command it is deciding. */
export interface DecideContext {
  readonly stream: string;
  readonly key: string;
  readonly commandId: string;
  /** The hub's clock at decision time (ms since the epoch). `evolve` never reads a clock. */
  readonly now: number;
  /** The client that sent the command, when known: the holder of any lease it takes. */
  readonly clientId: string | undefined;
  /**
   * A deterministic id for an entity the command creates: the same command id always yields the
   * same ids, so a retried command creates the same entity.
   */
  newId(prefix: string): string;
}

export interface EventMeta {
  readonly version: number;
  readonly time: number;
  readonly commandId?: string | undefined;
}

export type NewEventOf<Events extends Record<string, EventDefinition>> = {
  [K in keyof Events & string]: { type: K; data: z.input<SchemaOf<Events[K]>> };
}[keyof Events & string];

export type CommandUnion<Commands extends Record<string, z.ZodType>> = {
  [K in keyof Commands & string]: { type: K; payload: z.output<Commands[K]> };
}[keyof Commands & string];

export type EventUnion<Events extends Record<string, EventDefinition>> = {
  [K in keyof Events & string]: Event<K, z.output<SchemaOf<Events[K]>>>;
}[keyof Events & string];

/** A lease: part of a stream's state that belongs to a client and is removed when it is gone. */
export interface LeaseDefinition<State, C extends { type: string; payload: unknown }> {
  /** Every entry of the state that is leased, with its holder (a client id). */
  holders(state: State): Iterable<{ key: string; holder: string }>;
  /** The command the hub runs when a holder has been gone longer than the grace period. */
  expire(key: string, holder: string): C;
}

export interface DomainDefinition<Name extends string, State, Commands extends Record<string, z.ZodType>, Events extends Record<string, EventDefinition>> {
  name: Name;
  initialState: () => State;
  commands: Commands;
  events: Events;
  decide: {
    [K in keyof Commands & string]: (payload: z.output<Commands[K]>, state: State, ctx: DecideContext) => NewEventOf<Events>[];
  };
  evolve: {
    [K in keyof Events & string]: (draft: Draft<State>, data: z.output<SchemaOf<Events[K]>>, meta: EventMeta) => void;
  };
  leases?: LeaseDefinition<State, CommandUnion<Commands>>;
}

/** A domain, ready for the hub and the client. Built by {@link defineDomain}. */
export interface Domain<
  Name extends string = string,
  State = unknown,
  C extends { type: string; payload: unknown } = { type: string; payload: unknown },
  E extends { type: string; data: unknown } = { type: string; data: unknown },
  N extends { type: string; data: unknown } = { type: string; data: unknown },
> {
  readonly name: Name;
  readonly commandTypes: readonly string[];
  readonly eventTypes: readonly string[];
  readonly leases: LeaseDefinition<State, C> | undefined;
  initialState(): State;
  /** Validates a command's payload; throws `INVALID_PARAMS` (with zod issues) when it does not fit. */
  parseCommand(type: string, payload: unknown): C;
  /** Runs the decider: the events the command produces, or a thrown `DomainRejection`. */
  decide(command: C, state: State, ctx: DecideContext): N[];
  /** Validates events produced by `decide` against their schemas (catches decider bugs). */
  parseEvent(type: string, data: unknown): unknown;
  /** Applies one event. Pure: same state and event, same result. */
  evolve(state: State, event: Event): State;
  /** Applies several events inside one draft: much cheaper than one `evolve` per event. */
  evolveAll(state: State, events: readonly Event[]): State;
  /**
   * Opens one draft of `state` to apply events to over time, with the state readable between them:
   * what {@link createCommandBatch} uses so that a batch of commands copies a large collection once,
   * not once per command. Optional: without it a batch falls back to `evolveAll` per command.
   */
  openDraft?(state: State): StateDraft<State>;
  /** The current schema version of an event type. */
  eventVersion(type: string): number;
  /** Brings stored event data of `fromVersion` up to the current shape. */
  upcast(type: string, fromVersion: number, data: unknown): unknown;
  /** Type-only carriers for inference: `typeof domain.$types.state` and so on. */
  readonly $types: { state: State; command: C; event: E };
}

/** A state being changed by events, from {@link Domain.openDraft}. */
export interface StateDraft<State> {
  /** The state with every event applied so far: a draft, to read (never to keep) until `finish`. */
  readonly current: State;
  /** Applies events in order. If an evolve handler throws, the draft may hold part of them: discard it. */
  evolve(events: readonly Event[]): void;
  /** Closes the draft: the new state (the same object as the base when nothing changed). */
  finish(): State;
}

export type AnyDomain = Domain<string, any, any, any, any>;
export type StateOf<D> = D extends Domain<string, infer S, any, any, any> ? S : never;
export type CommandOf<D> = D extends Domain<string, any, infer C, any, any> ? C : never;
export type EventOf<D> = D extends Domain<string, any, any, infer E, any> ? E : never;

function normalise(definition: EventDefinition): VersionedEventSchema {
  return definition instanceof z.ZodType ? { schema: definition, version: 1 } : definition;
}

/**
 * Defines a domain: a pure decider over one kind of stream. Command, event and state types are
 * inferred from the schemas and `initialState`.
 */
export function defineDomain<const Name extends string, State, Commands extends Record<string, z.ZodType>, Events extends Record<string, EventDefinition>>(
  definition: DomainDefinition<Name, State, Commands, Events>,
): Domain<Name, State, CommandUnion<Commands>, EventUnion<Events>, NewEventOf<Events>> {
  type C = CommandUnion<Commands>;
  type N = NewEventOf<Events>;
  const commandSchemas = new Map<string, z.ZodType>(Object.entries(definition.commands));
  const eventSchemas = new Map<string, VersionedEventSchema>(Object.entries(definition.events).map(([type, def]) => [type, normalise(def)]));
  const decideHandlers = definition.decide as Record<string, (p: unknown, s: State, c: DecideContext) => N[]>;
  const evolveHandlers = definition.evolve as Record<string, (d: Draft<State>, data: unknown, m: EventMeta) => void>;

  const applyTo = (draft: Draft<State>, event: Event) => {
    const handler = evolveHandlers[event.type];
    if (!handler) throw new LockstepError('INTERNAL_ERROR', `${definition.name}: no evolve for event ${event.type}`);
    handler(draft, event.data, event);
  };

  /**
   * Our own copy-on-write drafts (draft.ts), immer's way of writing: a change costs the same on a
   * record of 100 entries as on one of 100,000 (large records become persistent records).
   */
  const evolveAll = (state: State, events: readonly Event[]): State => {
    if (events.length === 0) return state;
    // A state that cannot be drafted (a primitive) is handed to the handlers as it is.
    if (!isDraftable(state)) {
      for (const event of events) applyTo(state as Draft<State>, event);
      return state;
    }
    const draft = createDraft(state) as Draft<State>;
    for (const event of events) applyTo(draft, event);
    return finishDraft(draft) as State;
  };

  return {
    name: definition.name,
    commandTypes: [...commandSchemas.keys()],
    eventTypes: [...eventSchemas.keys()],
    leases: definition.leases,
    initialState: definition.initialState,
    parseCommand(type, payload) {
      const schema = commandSchemas.get(type);
      if (!schema) {
        throw new LockstepError('INVALID_PARAMS', `unknown command type ${JSON.stringify(type)} for domain ${definition.name}`, {
          reason: 'unknownCommand',
          commandTypes: [...commandSchemas.keys()],
        });
      }
      const result = schema.safeParse(payload);
      if (!result.success) {
        throw new LockstepError('INVALID_PARAMS', `invalid payload for ${type}: ${z.prettifyError(result.error)}`, {
          issues: result.error.issues,
        });
      }
      return { type, payload: result.data } as C;
    },
    decide(command, state, ctx) {
      const handler = decideHandlers[command.type];
      if (!handler) throw new LockstepError('INVALID_PARAMS', `unknown command type ${command.type}`);
      return handler(command.payload, state, ctx);
    },
    parseEvent(type, data) {
      const def = eventSchemas.get(type);
      if (!def) throw new LockstepError('INTERNAL_ERROR', `${definition.name}: decide produced unknown event ${type}`);
      const result = def.schema.safeParse(data);
      if (!result.success) {
        throw new LockstepError('INTERNAL_ERROR', `${definition.name}: decide produced an invalid ${type}: ${z.prettifyError(result.error)}`);
      }
      return result.data;
    },
    evolve(state, event) {
      return evolveAll(state, [event]);
    },
    evolveAll,
    openDraft(state) {
      // States that cannot be drafted (a primitive) are evolved the plain way.
      if (!isDraftable(state)) {
        let current = state;
        return {
          get current() {
            return current;
          },
          evolve: (events) => {
            current = evolveAll(current, events);
          },
          finish: () => current,
        };
      }
      const draft = createDraft(state) as Draft<State>;
      return {
        current: draft as State,
        evolve: (events) => {
          for (const event of events) applyTo(draft, event);
        },
        finish: () => finishDraft(draft) as State,
      };
    },
    eventVersion(type) {
      return eventSchemas.get(type)?.version ?? 1;
    },
    upcast(type, fromVersion, data) {
      const def = eventSchemas.get(type);
      if (!def) throw new LockstepError('INTERNAL_ERROR', `${definition.name}: stored event of unknown type ${type}`);
      let current = data;
      for (let v = fromVersion; v < def.version; v++) {
        const step = def.upcast?.[v];
        if (!step) throw new LockstepError('INTERNAL_ERROR', `${definition.name}: no upcaster for ${type} v${v} → v${v + 1}`);
        current = step(current);
      }
      return current;
    },
    $types: undefined as never,
  };
}

/** Builds the `newId` of a {@link DecideContext}: deterministic ids derived from the command id. */
export function deterministicIds(commandId: string): (prefix: string) => string {
  let counter = 0;
  return (prefix) => {
    const n = counter++;
    const h = hashString(n === 0 ? commandId : `${commandId}#${n}`)
      .toString(36)
      .padStart(11, '0');
    return `${prefix}_${h}`;
  };
}

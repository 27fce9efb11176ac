import { applyCommand, createCommandBatch } from '../applyCommand.js';
import type { AnyDomain, CommandOf, EventOf, StateOf } from '../domain.js';
import { DomainRejection, LockstepError } from '../errors.js';
import { createRandom, type Random } from '../random.js';
import type { TestRunner } from './testRunner.js';

/**
 * One payload generator per command type: given a seeded random source and the stream's state as it
 * is, a payload to send. It may be invalid or refused on purpose: refusals are part of what the laws
 * check. Command types without a generator are not sent.
 */
export type CommandGenerators<D extends AnyDomain> = {
  [K in CommandOf<D>['type']]?: (random: Random, state: StateOf<D>) => unknown;
};

export interface DomainLawsOptions<D extends AnyDomain> {
  /** `describe` and `it` of the test runner (vitest's, jest's or node:test's). */
  runner: TestRunner;
  commands: CommandGenerators<D>;
  /** The seed of the first run; run `r` uses `seed + r`. A failure names its seed. Default 1. */
  seed?: number;
  /** How many command sequences. Default 50. */
  runs?: number;
  /** Commands per sequence. Default 25. */
  steps?: number;
  /** The stream the commands go to. Default `<domain>/laws`. */
  stream?: string;
  /** The senders a command is given at random (`undefined`: none known). Default two clients and none. */
  clientIds?: readonly (string | undefined)[];
  /** The name of the `describe` block. Default `<domain>: domain laws`. */
  name?: string;
}

/** Defaults of {@link DomainLawsOptions}. */
export const DOMAIN_LAWS_DEFAULTS = { seed: 1, runs: 50, steps: 25, clientIds: ['client-a', 'client-b', undefined] } as const;

interface Step {
  command: { id: string; type: string; payload: unknown };
  clientId: string | undefined;
  now: number;
  /** The version before the command. */
  version: number;
  events: readonly EventOf<AnyDomain>[];
  refused: boolean;
}

interface History {
  seed: number;
  steps: Step[];
  log: EventOf<AnyDomain>[];
  state: unknown;
  /** Laws broken while the history was generated, by law. */
  broken: Map<string, string>;
}

const UNCHANGED = 'decide leaves the state it is given unchanged';
const REFUSALS = 'a refused command produces no events and changes nothing';

/**
 * Registers property checks that every domain should pass, under the given runner. Each law is one
 * test over `runs` seeded command sequences built from `commands`:
 *
 * - decide leaves the state it is given unchanged (accepted or refused);
 * - a refused command (a `DomainRejection`, or `INVALID_PARAMS` for a payload that does not fit)
 *   produces no events and changes nothing, also inside a batch of commands, as the hub runs them;
 *   anything else thrown is a bug;
 * - evolve is deterministic: the same events on equal states (a replay, or a state restored from its
 *   JSON as a snapshot is) give equal states;
 * - `evolveAll` of the events in one batch equals `evolve` one at a time;
 * - event data round-trips through JSON, as it does on the wire and in stores: it holds only JSON
 *   values, and the round-tripped events evolve to the same state.
 *
 * States are compared by their JSON text, keys sorted. Core takes no dependency on a test library:
 * the runner is passed in, and randomness is core's seeded `createRandom`.
 *
 * ```ts
 * // describe and it: vitest's, jest's or node:test's
 * describeDomainLaws(counter, {
 *   runner: { describe, it },
 *   commands: { add: (random) => ({ by: random.int(10) - 3 }) },
 * });
 * ```
 */
export function describeDomainLaws<D extends AnyDomain>(domain: D, options: DomainLawsOptions<D>): void {
  const { runner } = options;
  const seed = options.seed ?? DOMAIN_LAWS_DEFAULTS.seed;
  const runs = options.runs ?? DOMAIN_LAWS_DEFAULTS.runs;
  const stepCount = options.steps ?? DOMAIN_LAWS_DEFAULTS.steps;
  const stream = options.stream ?? `${domain.name}/laws`;
  const clientIds = options.clientIds ?? DOMAIN_LAWS_DEFAULTS.clientIds;
  const generators = Object.entries(options.commands as Record<string, ((random: Random, state: unknown) => unknown) | undefined>).filter(
    (entry): entry is [string, (random: Random, state: unknown) => unknown] => entry[1] !== undefined,
  );
  if (generators.length === 0) throw new RangeError(`describeDomainLaws(${domain.name}): no command generators`);

  const generate = (runSeed: number): History => {
    const random = createRandom(runSeed);
    let state: StateOf<D> = domain.initialState();
    let version = 0;
    let now = Date.UTC(2026, 0, 1);
    const steps: Step[] = [];
    const log: EventOf<D>[] = [];
    const broken = new Map<string, string>();
    for (let i = 0; i < stepCount; i++) {
      const [type, generator] = random.pick(generators);
      const command = { id: `law-${runSeed}-${i}`, type, payload: generator(random, state) };
      const clientId = random.pick(clientIds);
      now += random.int(1_000);
      const given = state;
      const before = canonical(given);
      let events: EventOf<D>[] = [];
      let refused = false;
      try {
        const applied = applyCommand(domain, given, command, { now, version, stream, clientId });
        ({ events } = applied);
        state = applied.state;
      } catch (error) {
        refused = true;
        if (!(error instanceof DomainRejection || (error instanceof LockstepError && error.code === 'INVALID_PARAMS')) && !broken.has(REFUSALS)) {
          broken.set(REFUSALS, at(i, command, `threw ${describeError(error)}, not a DomainRejection`));
        }
      }
      if (canonical(given) !== before && !broken.has(UNCHANGED)) {
        broken.set(UNCHANGED, at(i, command, `the state given to decide was changed (${refused ? 'refused' : 'accepted'})`));
      }
      steps.push({ command, clientId, now, version, events, refused });
      log.push(...events);
      version += events.length;
    }
    return { seed: runSeed, steps, log, state, broken };
  };

  // Histories are built once, lazily, and shared by the laws.
  let histories: History[] | undefined;
  const all = (): History[] => (histories ??= Array.from({ length: runs }, (_, r) => generate(seed + r)));

  const law = (name: string, check: (history: History) => string | undefined) => {
    runner.it(name, () => {
      for (const history of all()) {
        const problem = history.broken.get(name) ?? check(history);
        if (problem !== undefined) {
          throw new Error(`${domain.name}: law "${name}" broken with seed ${history.seed} (replay: seed ${history.seed}, runs 1): ${problem}`);
        }
      }
    });
  };

  runner.describe(options.name ?? `${domain.name}: domain laws`, () => {
    // Checked while each sequence is decided (the history's `broken`), accepted and refused commands alike.
    law(UNCHANGED, () => undefined);

    law(REFUSALS, (history) => {
      // The same commands in one batch, as the hub runs them: refusals leave the batch untouched.
      const batch = createCommandBatch(domain, domain.initialState(), stream);
      for (const [i, step] of history.steps.entries()) {
        let events: readonly unknown[] = [];
        let refused = false;
        try {
          events = batch.apply(step.command, { now: step.now, version: step.version, clientId: step.clientId });
        } catch {
          refused = true;
        }
        if (refused !== step.refused)
          return at(i, step.command, `${refused ? 'refused' : 'accepted'} in a batch, ${step.refused ? 'refused' : 'accepted'} alone`);
        if (canonical(events) !== canonical(step.events)) return at(i, step.command, 'other events in a batch than alone');
      }
      const batched = canonical(batch.finish());
      return batched === canonical(history.state)
        ? undefined
        : `the batch of all ${history.steps.length} commands ends in another state than the commands one by one`;
    });

    law('evolve is deterministic: the same events on equal states give equal states', (history) => {
      const expected = canonical(history.state);
      const again = history.log.reduce<StateOf<D>>((state, event) => domain.evolve(state, event), domain.initialState());
      if (canonical(again) !== expected) return 'replaying the log gives another state than deciding it';
      // From a state restored from its JSON text (as a snapshot is), the rest of the log ends the same.
      const middle = history.log.length >> 1;
      const head = domain.evolveAll(domain.initialState(), history.log.slice(0, middle));
      const restored = JSON.parse(JSON.stringify(head)) as StateOf<D>;
      const fromRestored = domain.evolveAll(restored, history.log.slice(middle));
      return canonical(fromRestored) === expected ? undefined : `the state at version ${middle}, restored from JSON, evolves to another state`;
    });

    law('evolveAll of the events in one batch equals evolve one at a time', (history) => {
      const batched = domain.evolveAll(domain.initialState(), history.log);
      const oneByOne = history.log.reduce<StateOf<D>>((state, event) => domain.evolveAll(state, [event]), domain.initialState());
      return canonical(batched) === canonical(oneByOne) ? undefined : `evolveAll over ${history.log.length} events differs from one at a time`;
    });

    law('event data round-trips through JSON', (history) => {
      for (const event of history.log) {
        const problem = jsonProblem(event.data, 'data');
        if (problem !== undefined) return `event ${event.version} (${event.type}): ${problem} does not survive JSON`;
      }
      const wire = JSON.parse(JSON.stringify(history.log)) as EventOf<D>[];
      const evolved = domain.evolveAll(domain.initialState(), wire);
      return canonical(evolved) === canonical(history.state) ? undefined : 'the events, through JSON, evolve to another state';
    });
  });
}

function at(index: number, command: { type: string; payload: unknown }, problem: string): string {
  return `command ${index} (${command.type} ${safeJson(command.payload)}): ${problem}`;
}

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** JSON text with object keys sorted: equal for states that hold the same data in any key order. */
export function canonical(value: unknown): string {
  return (
    JSON.stringify(value, (_key, item: unknown) => {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) return item;
      const sorted: Record<string, unknown> = {};
      for (const key of Object.keys(item).sort()) sorted[key] = (item as Record<string, unknown>)[key];
      return sorted;
    }) ?? 'undefined'
  );
}

/** Where `value` holds something JSON would lose or change (undefined properties are dropped, not lost). */
function jsonProblem(value: unknown, path: string): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path} = ${value}`;
    case 'object': {
      if (value === null) return undefined;
      if (Array.isArray(value)) {
        for (let i = 0; i < value.length; i++) {
          if (value[i] === undefined) return `${path}[${i}] = undefined`;
          const problem = jsonProblem(value[i], `${path}[${i}]`);
          if (problem !== undefined) return problem;
        }
        return undefined;
      }
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) return `${path} (a ${value.constructor?.name ?? 'class instance'})`;
      for (const [key, item] of Object.entries(value)) {
        if (item === undefined) continue;
        const problem = jsonProblem(item, `${path}.${key}`);
        if (problem !== undefined) return problem;
      }
      return undefined;
    }
    default:
      return `${path} (a ${typeof value})`;
  }
}

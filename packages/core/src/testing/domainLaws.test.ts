import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineDomain, type AnyDomain } from '../domain.js';
import { reject } from '../errors.js';
import { describeDomainLaws, type CommandGenerators } from './domainLaws.js';
import type { TestRunner } from './testRunner.js';

/** A runner that collects the laws instead of registering them, so a test can run them and look. */
function collect<D extends AnyDomain>(domain: D, commands: CommandGenerators<D>): Map<string, string | undefined> {
  const tests: Array<{ name: string; body: () => void | Promise<void> }> = [];
  const runner: TestRunner = {
    describe: (_name, body) => body(),
    it: (name, body) => tests.push({ name, body }),
  };
  describeDomainLaws(domain, { runner, commands, runs: 10, steps: 20 });
  const outcome = new Map<string, string | undefined>();
  for (const test of tests) {
    try {
      void test.body();
      outcome.set(test.name, undefined);
    } catch (error) {
      outcome.set(test.name, (error as Error).message);
    }
  }
  return outcome;
}

const counterSpec = {
  name: 'counter' as const,
  initialState: () => ({ n: 0, seen: [] as number[] }),
  commands: { add: z.object({ by: z.number().int() }) },
  events: { added: z.object({ by: z.number().int() }) },
};

const good = defineDomain({
  ...counterSpec,
  decide: {
    add: ({ by }, state) => {
      if (state.n + by < 0) reject('counter.negative', 'would go negative');
      return [{ type: 'added', data: { by } }];
    },
  },
  evolve: {
    added: (draft, { by }) => {
      draft.n += by;
    },
  },
});
const add: CommandGenerators<typeof good> = { add: (random) => ({ by: random.int(10) - 4 }) };

describe('describeDomainLaws', () => {
  it('registers five laws under one describe, and a lawful domain passes them all', () => {
    const outcome = collect(good, add);
    expect(outcome.size).toBe(5);
    expect([...outcome.values()]).toEqual([undefined, undefined, undefined, undefined, undefined]);
  });

  it('catches a decide that changes the state it is given, naming the seed', () => {
    const mutating = defineDomain({
      ...counterSpec,
      decide: {
        add: ({ by }, state) => {
          state.seen.push(by);
          return [{ type: 'added', data: { by } }];
        },
      },
      evolve: { added: (draft, { by }) => void (draft.n += by) },
    });
    const failure = collect(mutating, { add: (random) => ({ by: random.int(3) }) }).get('decide leaves the state it is given unchanged');
    expect(failure).toMatch(/law "decide leaves the state it is given unchanged" broken with seed 1 .*the state given to decide was changed/);
  });

  it('catches a decide that throws something other than a DomainRejection', () => {
    const throwing = defineDomain({
      ...counterSpec,
      decide: {
        add: ({ by }) => {
          if (by > 3) throw new TypeError('oops');
          return [{ type: 'added', data: { by } }];
        },
      },
      evolve: { added: (draft, { by }) => void (draft.n += by) },
    });
    expect(collect(throwing, add).get('a refused command produces no events and changes nothing')).toMatch(/threw TypeError: oops, not a DomainRejection/);
  });

  it('catches an evolve that depends on something other than the state and the event', () => {
    let calls = 0;
    const impure = defineDomain({
      ...counterSpec,
      decide: { add: ({ by }) => [{ type: 'added', data: { by } }] },
      evolve: { added: (draft, { by }) => void (draft.n += by + calls++) },
    });
    expect(collect(impure, add).get('evolve is deterministic: the same events on equal states give equal states')).toMatch(/another state/);
  });

  it('catches event data that JSON cannot carry', () => {
    const dated = defineDomain({
      ...counterSpec,
      events: { added: z.object({ by: z.number().int(), at: z.date() }) },
      decide: { add: ({ by }) => [{ type: 'added', data: { by, at: new Date(0) } }] },
      evolve: { added: (draft, { by }) => void (draft.n += by) },
    });
    expect(collect(dated, add).get('event data round-trips through JSON')).toMatch(/data\.at \(a Date\) does not survive JSON/);
  });

  it('refuses an empty set of generators', () => {
    expect(() => collect(good, {})).toThrow(RangeError);
  });
});

import { defineDomain, reject } from '@lockstep/core';
import { z } from 'zod';

/**
 * The smallest useful domain, for tests of transports, hubs and clients that need a stream but no
 * business rules: a counter that can be added to, and refuses to go below zero
 * (`counter.negative`).
 */
export const counterDomain = defineDomain({
  name: 'counter',
  initialState: () => ({ n: 0 }),
  commands: { add: z.object({ by: z.number().int() }) },
  events: { added: z.object({ by: z.number().int() }) },
  decide: {
    add: ({ by }, state) => {
      if (state.n + by < 0) reject('counter.negative', 'would go negative', { n: state.n, by });
      return [{ type: 'added', data: { by } }];
    },
  },
  evolve: {
    added: (draft, { by }) => {
      draft.n += by;
    },
  },
});

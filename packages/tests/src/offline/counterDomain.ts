import { defineDomain } from '@lockstep/core';
import { z } from 'zod';

/** A counter whose events carry a tag each, so a test can tell every command's effect apart. */
export const taggedCounter = defineDomain({
  name: 'counter',
  initialState: () => ({ n: 0, tags: [] as string[] }),
  commands: { add: z.object({ by: z.number().int(), tag: z.string() }) },
  events: { added: z.object({ by: z.number().int(), tag: z.string() }) },
  decide: { add: ({ by, tag }) => [{ type: 'added', data: { by, tag } }] },
  evolve: {
    added: (draft, { by, tag }) => {
      draft.n += by;
      draft.tags.push(tag);
    },
  },
});

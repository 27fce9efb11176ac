import { describe, expect, it } from 'vitest';
import { createDraft, finishDraft } from '../draft.js';
import { isPersistentRecord } from '../persistentRecord.js';
import { own } from './keys.js';

type Items = Record<string, { n: number }>;

const plain = (): Items => Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, { n: i }]));

/** The same entries as a persistent record (what a changed large object becomes), `k1` changed. */
function persistent(): Items {
  const draft = createDraft({ items: plain() });
  draft.items['k1']!.n = 10;
  return finishDraft(draft).items;
}

describe('own', () => {
  it('reads own entries only, on plain objects, drafts, persistent records and their drafts', () => {
    const record = persistent();
    expect(isPersistentRecord(record)).toBe(true);
    const again = createDraft({ items: record });
    again.items['new'] = { n: -1 };
    const records: Array<[string, Items]> = [
      ['plain object', plain()],
      ['draft of a plain object', createDraft({ items: plain() }).items],
      ['persistent record', record],
      ['draft of a persistent record', again.items],
    ];
    for (const [what, items] of records) {
      expect(own(items, 'k5'), what).toEqual({ n: 5 });
      expect(own(items, 'missing'), what).toBeUndefined();
      for (const inherited of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
        expect(own(items, inherited), `${what}: ${inherited}`).toBeUndefined();
      }
    }
    expect(own(record, 'k1')).toEqual({ n: 10 });
    expect(own(again.items, 'k1')).toEqual({ n: 10 });
    expect(own(again.items, 'new')).toEqual({ n: -1 });
  });

  it('hands out the draft of an entry inside a draft, so that changes through it land', () => {
    for (const items of [plain(), persistent()]) {
      const draft = createDraft({ items });
      own(draft.items, 'k7')!.n = 70;
      const next = finishDraft(draft);
      expect(next.items['k7']).toEqual({ n: 70 });
      expect(items['k7']).toEqual({ n: 7 });
      expect(isPersistentRecord(next.items)).toBe(true);
    }
  });
});

import { describe, expect, it } from 'vitest';
import { createDraft, current, finishDraft, isDraft } from './draft.js';
import { isPersistentRecord, RECORD_THRESHOLD } from './persistentRecord.js';
import { createRandom, type Random } from './random.js';

interface Item {
  id: string;
  n: number;
  tags: string[];
  meta?: { note: string };
}
interface State {
  items: Record<string, Item>;
  order: string[];
  counter: number;
}

/** One random change, made the same way to the draft and to a plain model: the ids it may have touched. */
function change(random: Random, draft: State, model: State, spread: number): string[] {
  const id = `i${random.int(spread)}`;
  const item = draft.items[id];
  switch (random.int(9)) {
    case 0:
    case 1: {
      const fresh: Item = { id, n: random.int(100), tags: [] };
      draft.items[id] = fresh;
      model.items[id] = structuredClone(fresh);
      draft.order.push(id);
      model.order.push(id);
      return [id];
    }
    case 2:
      delete draft.items[id];
      delete model.items[id];
      return [id];
    case 3:
      if (!item) return [];
      item.n += 1;
      model.items[id]!.n += 1;
      return [id];
    case 4:
      if (!item) return [];
      item.tags.push(`t${random.int(5)}`);
      model.items[id]!.tags.push(item.tags[item.tags.length - 1]!);
      return [id];
    case 5:
      if (!item) return [];
      item.meta = { note: `note ${random.int(10)}` };
      model.items[id]!.meta = structuredClone(item.meta);
      return [id];
    case 6:
      if (!item?.meta) return [];
      item.meta.note += '!';
      model.items[id]!.meta!.note += '!';
      return [id];
    case 7: {
      // Moving a drafted entity under another key, then changing it there.
      const other = `i${random.int(spread)}`;
      if (!item || other === id) return [];
      draft.items[other] = item;
      delete draft.items[id];
      model.items[other] = model.items[id]!;
      delete model.items[id];
      draft.items[other].n -= 1;
      model.items[other].n -= 1;
      return [id, other];
    }
    default: {
      const at = random.int(draft.order.length + 1);
      draft.order.splice(at, 1);
      model.order.splice(at, 1);
      draft.counter++;
      model.counter++;
      return [];
    }
  }
}

describe('drafts', () => {
  for (const seed of [7, 8, 9, 20261208]) {
    it(`give what plain mutation gives, share what did not change and leave their base alone (seed ${seed})`, () => {
      const random = createRandom(seed);
      const spread = random.pick([10, RECORD_THRESHOLD * 3, 2_000]);
      let state: State = { items: {}, order: [], counter: 0 };
      const model: State = structuredClone(state);
      for (let round = 0; round < 60; round++) {
        // Sometimes the state arrives as JSON (a snapshot): its large records are plain objects again.
        if (random.chance(0.3)) state = JSON.parse(JSON.stringify(state)) as State;
        const before = JSON.stringify(state);
        const previous = state;
        const draft = createDraft(state);
        const touched = new Set<string>();
        const changes = 1 + random.int(40);
        for (let i = 0; i < changes; i++) {
          for (const id of change(random, draft, model, spread)) touched.add(id);
          // Sometimes look at the draft as it is now: a snapshot, unaffected by what follows.
          if (random.chance(0.05)) {
            const now = current(draft);
            const text = JSON.stringify(now);
            expect(isDraft(now), `seed ${seed}`).toBe(false);
            expect(JSON.parse(text), `seed ${seed}`).toEqual(model);
            for (const id of change(random, draft, model, spread)) touched.add(id);
            expect(JSON.stringify(now), `seed ${seed}`).toBe(text);
          }
        }
        state = finishDraft(draft);
        expect(JSON.stringify(previous), `seed ${seed}, round ${round}: the base changed`).toBe(before);
        expect(state, `seed ${seed}, round ${round}`).toEqual(model);
        expect(JSON.stringify(state), `seed ${seed}, round ${round}: key order`).toBe(JSON.stringify(model));
        if (state.items !== previous.items && Object.keys(state.items).length >= RECORD_THRESHOLD) {
          expect(isPersistentRecord(state.items), `seed ${seed}`).toBe(true);
        }
        // Entities no change reached keep their identity (what React selectors rely on).
        for (const [id, item] of Object.entries(previous.items)) {
          if (state.items[id] !== undefined && JSON.stringify(state.items[id]) === JSON.stringify(item) && !touched.has(id)) {
            expect(state.items[id], `seed ${seed}: ${id} was copied`).toBe(item);
          }
        }
      }
    });
  }

  it('hands back the base itself when nothing changed, and a new object for what did', () => {
    const items = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`i${i}`, { id: `i${i}`, n: i, tags: [] }]));
    const base: State = { items, order: [], counter: 0 };
    const untouched = createDraft(base);
    void untouched.items['i1']!.n;
    expect(finishDraft(untouched)).toBe(base);

    const draft = createDraft(base);
    draft.items['i1']!.n = 100;
    const next = finishDraft(draft);
    expect(next).not.toBe(base);
    expect(next.items).not.toBe(base.items);
    expect(isPersistentRecord(next.items)).toBe(true);
    expect(next.items['i1']).toEqual({ id: 'i1', n: 100, tags: [] });
    expect(next.items['i2']).toBe(base.items['i2']);
    expect(next.order).toBe(base.order);
    expect(base.items['i1']!.n).toBe(1);

    // A persistent record drafted again: same sharing, O(log n) per change.
    const again = createDraft(next);
    again.items['i3']!.tags.push('x');
    const third = finishDraft(again);
    expect(third.items['i1']).toBe(next.items['i1']);
    expect(third.items['i3']).toEqual({ id: 'i3', n: 3, tags: ['x'] });
    expect(next.items['i3']!.tags).toEqual([]);
  });

  it('turns a large plain object into a record at its first change, from the base, leaving the base alone', () => {
    const items = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`i${i}`, { id: `i${i}`, n: i, tags: [] as string[] }]));
    const text = JSON.stringify(items);
    const base: State = { items, order: [], counter: 0 };

    // A child drafted before the record's own first write, changed after it: both changes land.
    const draft = createDraft(base);
    const early = draft.items['i5']!;
    draft.items['new'] = { id: 'new', n: -1, tags: [] };
    delete draft.items['i7'];
    early.tags.push('late');
    draft.items['i9']!.n = 900;
    expect(Object.keys(draft.items).slice(-2)).toEqual(['i99', 'new']);
    expect('i7' in draft.items).toBe(false);
    expect(current(draft).items['i5']!.tags).toEqual(['late']);
    const next = finishDraft(draft);
    expect(isPersistentRecord(next.items)).toBe(true);
    expect(JSON.stringify(base.items)).toBe(text);
    const expected = JSON.parse(text) as Record<string, Item>;
    expected['new'] = { id: 'new', n: -1, tags: [] };
    delete expected['i7'];
    expected['i5']!.tags.push('late');
    expected['i9']!.n = 900;
    expect(JSON.stringify(next.items)).toBe(JSON.stringify(expected));
    expect(next.items['i1']).toBe(base.items['i1']);

    // Only a child changed: the record is built from the base when the draft finishes.
    const other = createDraft(base);
    other.items['i3']!.n = 300;
    const third = finishDraft(other);
    expect(isPersistentRecord(third.items)).toBe(true);
    expect(third.items['i3']).toEqual({ id: 'i3', n: 300, tags: [] });
    expect(third.items['i4']).toBe(base.items['i4']);
    expect(JSON.stringify(base.items)).toBe(text);
  });

  it('reads like the object it drafts', () => {
    const draft = createDraft({ a: 1, list: [1, 2, 3], nested: { b: 2 } });
    expect(Array.isArray(draft.list)).toBe(true);
    expect(Object.keys(draft)).toEqual(['a', 'list', 'nested']);
    expect('a' in draft).toBe(true);
    expect(draft.list.map((x) => x * 2)).toEqual([2, 4, 6]);
    expect(isDraft(draft.nested)).toBe(true);
    expect(JSON.stringify(draft)).toBe('{"a":1,"list":[1,2,3],"nested":{"b":2}}');
    draft.list.splice(1, 1);
    draft.list.unshift(0);
    expect(finishDraft(draft)).toEqual({ a: 1, list: [0, 1, 3], nested: { b: 2 } });
  });

  it('refuses changes once finished', () => {
    const draft = createDraft({ a: { b: 1 } });
    const inner = draft.a;
    finishDraft(draft);
    expect(() => {
      inner.b = 2;
    }).toThrow(TypeError);
  });
});

import * as z from 'zod';
import { defineDomain, type DecideContext } from '../domain.js';
import { reject } from '../errors.js';
import { entityIdSchema, own } from './keys.js';

/** How many sessions may be focused at once unless `focus.configure` says otherwise. */
export const DEFAULT_MAX_FOCUSED = 4;
/** The largest `maxFocused` that `focus.configure` accepts. */
export const MAX_FOCUSED_LIMIT = 64;

export interface FocusState {
  maxFocused: number;
  /** Focused session ids, in the order they gained focus. Never longer than `maxFocused`. */
  focused: string[];
  /** Last activity (ms since the epoch) of each focused session; no other keys. */
  lastActive: Record<string, number>;
}

export type FocusLossReason = 'blurred' | 'evicted' | 'closed' | 'replaced' | 'reconfigured';

type FocusEvent =
  | { type: 'focus.gained'; data: { sessionId: string; at: number } }
  | { type: 'focus.touched'; data: { sessionId: string; at: number } }
  | { type: 'focus.lost'; data: { sessionId: string; reason: 'evicted'; bySessionId: string } }
  | { type: 'focus.lost'; data: { sessionId: string; reason: Exclude<FocusLossReason, 'evicted'> } };

/**
 * Focused sessions from least to most recently active, ties broken by focus order (earliest
 * first): the order in which sessions are evicted.
 */
export function evictionOrder(state: FocusState): string[] {
  const activity = (id: string) => own(state.lastActive, id) ?? 0;
  return [...state.focused].sort((a, b) => activity(a) - activity(b)); // stable: ties keep focus order
}

/** The session that focusing one more would evict, or undefined while there is room. */
export function nextEviction(state: FocusState): string | undefined {
  return state.focused.length >= state.maxFocused ? evictionOrder(state)[0] : undefined;
}

/** Whether `sessionId` is focused. */
export function isFocused(state: FocusState, sessionId: string): boolean {
  return Object.hasOwn(state.lastActive, sessionId);
}

function touch(state: FocusState, sessionId: string, ctx: DecideContext): FocusEvent[] {
  return own(state.lastActive, sessionId) === ctx.now ? [] : [{ type: 'focus.touched', data: { sessionId, at: ctx.now } }];
}

const sessionId = entityIdSchema;

/**
 * The set of focused terminal sessions of a project (`focus/<project>`), at most `maxFocused`.
 * Every eviction is decided here and recorded as a `focus.lost` event before the event that
 * needed the room, so no state after any event holds more than `maxFocused` sessions.
 */
export const focusDomain = defineDomain({
  name: 'focus',
  initialState: (): FocusState => ({ maxFocused: DEFAULT_MAX_FOCUSED, focused: [], lastActive: {} }),
  commands: {
    'focus.set': z.strictObject({ sessionId }),
    /** Replaces the whole set at once (grid layout). */
    'focus.setMany': z.strictObject({ sessionIds: z.array(sessionId).max(MAX_FOCUSED_LIMIT) }),
    'focus.blur': z.strictObject({ sessionId }),
    'focus.touch': z.strictObject({ sessionId }),
    'focus.close': z.strictObject({ sessionId }),
    'focus.configure': z.strictObject({ maxFocused: z.number().int().min(1).max(MAX_FOCUSED_LIMIT) }),
  },
  events: {
    'focus.gained': z.object({ sessionId, at: z.number() }),
    'focus.touched': z.object({ sessionId, at: z.number() }),
    'focus.lost': z.union([
      z.object({ sessionId, reason: z.literal('evicted'), bySessionId: sessionId }),
      z.object({ sessionId, reason: z.enum(['blurred', 'closed', 'replaced', 'reconfigured']) }),
    ]),
    'focus.configured': z.object({ maxFocused: z.number().int().min(1).max(MAX_FOCUSED_LIMIT) }),
  },
  // Literal values in returned events need `as const`: TypeScript widens them while it infers the
  // domain's types (see docs/domains.md).
  decide: {
    'focus.set': ({ sessionId }, state, ctx) => {
      if (isFocused(state, sessionId)) return touch(state, sessionId, ctx);
      const overflow = state.focused.length + 1 - state.maxFocused;
      const evicted = overflow > 0 ? evictionOrder(state).slice(0, overflow) : [];
      return [
        ...evicted.map((id) => ({
          type: 'focus.lost' as const,
          data: { sessionId: id, reason: 'evicted' as const, bySessionId: sessionId },
        })),
        { type: 'focus.gained', data: { sessionId, at: ctx.now } },
      ];
    },
    'focus.setMany': ({ sessionIds }, state, ctx) => {
      const wanted = new Set(sessionIds);
      if (wanted.size !== sessionIds.length) {
        const duplicates = sessionIds.filter((id, index) => sessionIds.indexOf(id) !== index);
        reject('focus.duplicateSession', `sessionIds lists ${duplicates.join(', ')} more than once`, { duplicates });
      }
      if (sessionIds.length > state.maxFocused) {
        reject('focus.tooMany', `at most ${state.maxFocused} sessions can be focused, not ${sessionIds.length}`, {
          maxFocused: state.maxFocused,
          requested: sessionIds.length,
        });
      }
      const events: FocusEvent[] = [];
      for (const id of state.focused) {
        if (!wanted.has(id)) events.push({ type: 'focus.lost', data: { sessionId: id, reason: 'replaced' } });
      }
      for (const id of sessionIds) {
        if (isFocused(state, id)) events.push(...touch(state, id, ctx));
        else events.push({ type: 'focus.gained', data: { sessionId: id, at: ctx.now } });
      }
      return events;
    },
    'focus.blur': ({ sessionId }, state) => (isFocused(state, sessionId) ? [{ type: 'focus.lost', data: { sessionId, reason: 'blurred' as const } }] : []),
    'focus.touch': ({ sessionId }, state, ctx) => (isFocused(state, sessionId) ? touch(state, sessionId, ctx) : []),
    'focus.close': ({ sessionId }, state) => (isFocused(state, sessionId) ? [{ type: 'focus.lost', data: { sessionId, reason: 'closed' as const } }] : []),
    'focus.configure': ({ maxFocused }, state) => {
      if (maxFocused === state.maxFocused) return [];
      const overflow = state.focused.length - maxFocused;
      const evicted = overflow > 0 ? evictionOrder(state).slice(0, overflow) : [];
      return [
        ...evicted.map((id) => ({ type: 'focus.lost' as const, data: { sessionId: id, reason: 'reconfigured' as const } })),
        { type: 'focus.configured', data: { maxFocused } },
      ];
    },
  },
  evolve: {
    'focus.gained': (draft, { sessionId, at }) => {
      if (!Object.hasOwn(draft.lastActive, sessionId)) draft.focused.push(sessionId);
      draft.lastActive[sessionId] = at;
    },
    'focus.touched': (draft, { sessionId, at }) => {
      if (Object.hasOwn(draft.lastActive, sessionId)) draft.lastActive[sessionId] = at;
    },
    'focus.lost': (draft, { sessionId }) => {
      const index = draft.focused.indexOf(sessionId);
      if (index >= 0) draft.focused.splice(index, 1);
      if (Object.hasOwn(draft.lastActive, sessionId)) delete draft.lastActive[sessionId];
    },
    'focus.configured': (draft, { maxFocused }) => {
      draft.maxFocused = maxFocused;
    },
  },
});

export type FocusDomain = typeof focusDomain;

import { evictionOrder, focusDomain, nextEviction, type FocusState } from '@lockstep/core';
import { eventsOf, writeJson } from './report.js';
import { domainRead, domainWrite, table, type CommandOutcome, type Subcommand } from './spec.js';

function focusJson(outcome: CommandOutcome<FocusState>, fields: Record<string, unknown>) {
  return writeJson(outcome, { ...fields, focused: outcome.state.focused, maxFocused: outcome.state.maxFocused });
}

const set: Subcommand = {
  words: ['focus', 'set'],
  summary: 'Focus a terminal session; past the limit, the least recently active one is evicted.',
  positionals: [{ name: 'sessionId', help: 'the session' }],
  flags: {},
  scope: 'project',
  write: true,
  build(input, key) {
    const sessionId = input['sessionId'] as string;
    return domainWrite(focusDomain, this, key, 'focus.set', { sessionId }, (outcome) => {
      const evicted = eventsOf<{ sessionId: string; reason: string }>(outcome, 'focus.lost')
        .filter((lost) => lost.reason === 'evicted')
        .map((lost) => lost.sessionId);
      const gained = outcome.events === undefined || eventsOf(outcome, 'focus.gained').length > 0;
      const line = outcome.ack.duplicate
        ? `focused ${sessionId} (already applied earlier: command id ${outcome.commandId})`
        : gained
          ? `focused ${sessionId}${evicted.length > 0 ? ` (evicted ${evicted.join(', ')})` : ''}`
          : `${sessionId} was already focused`;
      return { lines: [line], json: focusJson(outcome, { sessionId, evicted }) };
    });
  },
};

const blur: Subcommand = {
  words: ['focus', 'blur'],
  summary: 'Take the focus from a terminal session.',
  positionals: [{ name: 'sessionId', help: 'the session' }],
  flags: {},
  scope: 'project',
  write: true,
  build(input, key) {
    const sessionId = input['sessionId'] as string;
    return domainWrite(focusDomain, this, key, 'focus.blur', { sessionId }, (outcome) => {
      const blurred = outcome.events === undefined || eventsOf(outcome, 'focus.lost').length > 0;
      return { lines: [blurred ? `blurred ${sessionId}` : `${sessionId} was not focused`], json: focusJson(outcome, { sessionId }) };
    });
  },
};

const show: Subcommand = {
  words: ['focus', 'show'],
  summary: 'Show the focused sessions, in focus order, and which one goes next.',
  positionals: [],
  flags: {},
  scope: 'project',
  build(_input, key) {
    return domainRead(focusDomain, key, ({ stream, version, state: focus }) => {
      const next = nextEviction(focus);
      const order = evictionOrder(focus);
      const lines = [`${focus.focused.length} of at most ${focus.maxFocused} sessions focused in ${stream}`];
      if (focus.focused.length > 0) {
        lines.push(
          ...table(
            ['SESSION', 'LAST ACTIVE', ''],
            focus.focused.map((id) => [id, new Date(focus.lastActive[id] ?? 0).toISOString(), id === next ? 'evicted by the next focus' : '']),
          ),
        );
      }
      return { lines, json: { stream, version, focused: focus.focused, maxFocused: focus.maxFocused, lastActive: focus.lastActive, evictionOrder: order } };
    });
  },
};

export const focusSubcommands: readonly Subcommand[] = [set, blur, show];

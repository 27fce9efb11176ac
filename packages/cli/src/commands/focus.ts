import { DEFAULT_MAX_FOCUSED, MAX_FOCUSED_LIMIT, evictionOrder, focusDomain, nextEviction, type FocusState } from '@lockstep/core';
import { UsageError } from '../options.js';
import { eventsOf, writeJson, writeLine } from './report.js';
import { domainRead, domainWrite, integerArgument, parseValue, table, type CommandOutcome, type Subcommand } from './spec.js';

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

/** The sessions this command took the focus from. */
const lostBy = (outcome: CommandOutcome) => eventsOf<{ sessionId: string }>(outcome, 'focus.lost').map((lost) => lost.sessionId);

const setMany: Subcommand = {
  words: ['focus', 'set-many'],
  summary: 'Focus exactly these sessions, in this order (a grid layout): the others lose focus; none clears the focus.',
  positionals: [{ name: 'sessionIds', help: `the sessions, at most maxFocused (${DEFAULT_MAX_FOCUSED} unless configured)`, variadic: true }],
  flags: {},
  scope: 'project',
  write: true,
  build(input, key) {
    const sessionIds = [...(input['sessionIds'] as readonly string[])];
    return domainWrite(focusDomain, this, key, 'focus.setMany', { sessionIds }, (outcome) => {
      const replaced = lostBy(outcome);
      const done = sessionIds.length === 0 ? 'cleared the focus' : `focused ${sessionIds.join(', ')}`;
      const line = writeLine(outcome, `${done}${replaced.length > 0 ? ` (unfocused ${replaced.join(', ')})` : ''}`, `${done}, unchanged`);
      return { lines: [line], json: focusJson(outcome, { sessionIds, replaced }) };
    });
  },
};

const configure: Subcommand = {
  words: ['focus', 'configure'],
  summary: 'Set how many sessions may be focused at once; a smaller limit unfocuses the least recently active.',
  positionals: [],
  flags: { max: { type: 'string', value: 'N', help: `at most N sessions focused at once, 1–${MAX_FOCUSED_LIMIT} (default ${DEFAULT_MAX_FOCUSED})` } },
  scope: 'project',
  write: true,
  build(input, key) {
    if (input['max'] === undefined) throw new UsageError('--max N is required');
    const maxFocused = parseValue(integerArgument(1, MAX_FOCUSED_LIMIT), input['max'], '--max');
    return domainWrite(focusDomain, this, key, 'focus.configure', { maxFocused }, (outcome) => {
      const unfocused = lostBy(outcome);
      const done = `at most ${maxFocused} sessions focused`;
      const line = writeLine(outcome, `${done}${unfocused.length > 0 ? ` (unfocused ${unfocused.join(', ')})` : ''}`, `${done}, unchanged`);
      return { lines: [line], json: focusJson(outcome, { unfocused }) };
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

export const focusSubcommands: readonly Subcommand[] = [set, setMany, blur, configure, show];

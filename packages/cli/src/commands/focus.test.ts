import { describe, expect, it } from 'vitest';
import { parseClientCommand, type ClientCommandLine } from '../clientArgs.js';
import { UsageError } from '../options.js';
import type { Operation } from './spec.js';

/** The focus command lines (seed 001): parsed to the command the hub gets. End to end: reference-server focus.test.ts. */

function parsed(argv: string[]): Extract<ClientCommandLine, { operation: Operation }> {
  const line = parseClientCommand(argv);
  if ('help' in line) throw new Error(`expected a command, got help: ${line.help}`);
  return line;
}

describe('focus command lines', () => {
  it('set-many takes any number of sessions, in order (none clears the focus)', () => {
    expect(parsed(['focus', 'set-many', 'term-1', 'term-2', 'term-3', '--project', 'web']).operation).toMatchObject({
      kind: 'command',
      key: 'web',
      type: 'focus.setMany',
      payload: { sessionIds: ['term-1', 'term-2', 'term-3'] },
    });
    expect(parsed(['focus', 'set-many']).operation).toMatchObject({ type: 'focus.setMany', payload: { sessionIds: [] } });
  });

  it('configure takes --max N', () => {
    expect(parsed(['focus', 'configure', '--max', '6', '--command-id', 'grid-6']).operation).toMatchObject({
      kind: 'command',
      type: 'focus.configure',
      payload: { maxFocused: 6 },
      commandId: 'grid-6',
    });
  });

  it.each([
    [['focus', 'set-many', 'a', 'bad id'], /focus set-many: SESSION_IDS: /],
    [['focus', 'configure'], /focus configure: --max N is required/],
    [['focus', 'configure', '--max', '0'], /--max: /],
    [['focus', 'configure', '--max', '65'], /--max: /],
    [['focus', 'configure', '--max', 'four'], /--max: expected a whole number/],
    [['focus', 'configure', '4'], /takes no arguments, got "4"/],
  ])('refuse %j naming the argument', (argv, message) => {
    expect(() => parseClientCommand(argv)).toThrow(UsageError);
    expect(() => parseClientCommand(argv)).toThrow(message);
  });

  it('are listed in the group help', () => {
    const line = parseClientCommand(['focus', '--help']);
    expect('help' in line && line.help).toMatch(/set-many SESSION_IDS +Focus exactly these sessions/);
    expect('help' in line && line.help).toMatch(/configure +Set how many sessions may be focused at once/);
  });
});

import { parseArgs } from 'node:util';
import { STREAM_KEY_PATTERN, commandIdSchema } from '@lockstep/core';
import { z } from 'zod';
import { focusSubcommands } from './commands/focus.js';
import { orchestrationSubcommands } from './commands/orchestration.js';
import { describeIssues, integerArgument, kebab, labelOf, parseValue, placeholder, type Input, type Operation, type Subcommand } from './commands/spec.js';
import { tasksSubcommands } from './commands/tasks.js';
import { watchSubcommands } from './commands/watch.js';
import { DEFAULT_KEY, HUB_OPTIONS_HELP, HUB_OPTION_FLAGS, hubOptionsSchema, type HubOptions } from './hubOptions.js';
import { UsageError } from './options.js';

/** Every client subcommand, in the order the help lists them. */
export const CLIENT_SUBCOMMANDS: readonly Subcommand[] = [...tasksSubcommands, ...orchestrationSubcommands, ...focusSubcommands, ...watchSubcommands];

/** The first words of the client subcommands: `task`, `session`, `orchestration`, `focus`, `watch`. */
export const CLIENT_GROUPS: ReadonlySet<string> = new Set(CLIENT_SUBCOMMANDS.map((subcommand) => subcommand.words[0]!));

/** A parsed client command line: what to do and where, or a help text to print. */
export type ClientCommandLine = { help: string } | { subcommand: Subcommand; operation: Operation; hub: HubOptions };

const keySchema = z.string().regex(STREAM_KEY_PATTERN, 'keys are 1–128 characters of A-Z a-z 0-9 _ . : @ - (not starting with . : @ -)');

const SCOPE_FLAGS = {
  project: { value: 'KEY', help: `the project: its streams are tasks/KEY and focus/KEY (default: ${DEFAULT_KEY})` },
  tenant: { value: 'KEY', help: `the orchestration stream orchestration/KEY (default: ${DEFAULT_KEY})` },
} as const;

const WRITE_FLAGS = {
  expectedVersion: { value: 'N', help: 'apply only if the stream is still at version N (else VERSION_CONFLICT)' },
  commandId: { value: 'ID', help: 'the command id: the same id again is applied at most once (default: a new one)' },
} as const;

/** The environment variables that supply defaults. */
export interface ClientEnv {
  LOCKSTEP_SERVER?: string | undefined;
  LOCKSTEP_TOKEN?: string | undefined;
  /** Where local hubs leave their tokens (see `runtimeDirectory` of @lockstep/server). */
  LOCKSTEP_RUNTIME_DIR?: string | undefined;
  XDG_RUNTIME_DIR?: string | undefined;
}

/**
 * Parses a client command line (`task create "Ship it" --project web`) into the operation to run
 * and the hub options; throws UsageError with a message naming the argument at fault.
 */
export function parseClientCommand(argv: readonly string[], env: ClientEnv = {}): ClientCommandLine {
  const [group, ...afterGroup] = argv;
  const candidates = CLIENT_SUBCOMMANDS.filter((subcommand) => subcommand.words[0] === group);
  if (candidates.length === 0) throw new UsageError(`unknown command ${JSON.stringify(group)}`);
  let subcommand: Subcommand | undefined;
  let args: string[];
  if (candidates.length === 1 && candidates[0]!.words.length === 1) {
    subcommand = candidates[0]!;
    args = afterGroup;
  } else {
    const [action, ...rest] = afterGroup;
    if (action === '--help' || action === '-h' || action === 'help') return { help: groupHelp(group!, candidates) };
    if (action === undefined) throw new UsageError(`${group} needs a command: ${candidates.map((c) => c.words[1]).join(', ')}`, groupHelp(group!, candidates));
    subcommand = candidates.find((candidate) => candidate.words[1] === action);
    if (!subcommand) {
      throw new UsageError(
        `unknown ${group} command ${JSON.stringify(action)}: expected ${candidates.map((c) => c.words[1]).join(', ')}`,
        groupHelp(group!, candidates),
      );
    }
    args = rest;
  }
  try {
    return parseSubcommand(subcommand, args, env);
  } catch (error) {
    if (error instanceof UsageError) throw new UsageError(`${subcommand.words.join(' ')}: ${error.message}`, subcommandHelp(subcommand));
    throw error;
  }
}

function parseSubcommand(subcommand: Subcommand, args: readonly string[], env: ClientEnv): ClientCommandLine {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = { ...HUB_OPTION_FLAGS, help: { type: 'boolean', short: 'h' } };
  if (subcommand.scope) options[subcommand.scope] = { type: 'string' };
  if (subcommand.write) for (const name of Object.keys(WRITE_FLAGS)) options[kebab(name)] = { type: 'string' };
  for (const [name, flag] of Object.entries(subcommand.flags)) options[kebab(name)] = { type: flag.type };

  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values['help']) return { help: subcommandHelp(subcommand) };

  const expected = subcommand.positionals;
  if (expected.at(-1)?.variadic ? positionals.length < expected.length - 1 : positionals.length !== expected.length) {
    const wanted = expected.length === 0 ? 'no arguments' : expected.map((p) => placeholder(p.name)).join(' ');
    const got = positionals.length === 0 ? 'none' : positionals.map((p) => JSON.stringify(p)).join(' ');
    throw new UsageError(`takes ${wanted}, got ${got}`);
  }

  const hub = parseHubOptions(values, env);
  const key = subcommand.scope ? parseValue(keySchema.default(DEFAULT_KEY), values[subcommand.scope], `--${subcommand.scope}`) : DEFAULT_KEY;

  const input: Input = {};
  expected.forEach((positional, index) => (input[positional.name] = positional.variadic ? positionals.slice(index) : positionals[index]));
  for (const name of Object.keys(subcommand.flags)) input[name] = values[kebab(name)];
  const operation = subcommand.build(input, key);

  if (subcommand.write && operation.kind === 'command') {
    const label = (name: string) => labelOf(subcommand, name);
    operation.expectedVersion = parseValue(integerArgument(0, Number.MAX_SAFE_INTEGER).optional(), values['expected-version'], label('expectedVersion'));
    operation.commandId = parseValue(commandIdSchema.optional(), values['command-id'], label('commandId'));
  }
  return { subcommand, operation, hub };
}

/** `--server`, `--token`, `--json`, `--timeout`, with `LOCKSTEP_SERVER` and `LOCKSTEP_TOKEN` as defaults. */
function parseHubOptions(values: Record<string, string | boolean | undefined>, env: ClientEnv): HubOptions {
  const fromEnv = {
    server: values['server'] === undefined && env.LOCKSTEP_SERVER !== undefined,
    token: values['token'] === undefined && env.LOCKSTEP_TOKEN !== undefined,
  };
  const raw = {
    server: values['server'] ?? env.LOCKSTEP_SERVER,
    token: values['token'] ?? env.LOCKSTEP_TOKEN,
    json: values['json'],
    timeout: values['timeout'],
  };
  const parsed = hubOptionsSchema.safeParse(Object.fromEntries(Object.entries(raw).filter(([, value]) => value !== undefined)));
  if (!parsed.success) {
    throw new UsageError(
      describeIssues(parsed.error.issues, (name) =>
        name === 'server' && fromEnv.server ? 'LOCKSTEP_SERVER' : name === 'token' && fromEnv.token ? 'LOCKSTEP_TOKEN' : `--${name}`,
      ),
    );
  }
  const { server, token, json, timeout } = parsed.data;
  return { server, token, json, timeoutMs: timeout };
}

const HELP_WIDTH = 100;
const INDENT = 24;

/** A help line: the flag in a column, its meaning wrapped beside it. */
function column(left: string, help: string): string {
  const lines: string[] = [];
  let line = '';
  for (const word of help.split(' ')) {
    if (line !== '' && INDENT + line.length + 1 + word.length > HELP_WIDTH) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  const first = left.length <= INDENT - 4 ? `  ${left.padEnd(INDENT - 2)}${lines.shift()}` : `  ${left}`;
  return [first, ...lines.map((rest) => `${' '.repeat(INDENT)}${rest}`)].join('\n');
}

/** `lockstep task create --help`. */
export function subcommandHelp(subcommand: Subcommand): string {
  const synopsis = [...subcommand.words, ...subcommand.positionals.map((p) => placeholder(p.name)), '[options]'].join(' ');
  const lines = [`Usage: lockstep ${synopsis}`, '', subcommand.summary];
  if (subcommand.positionals.length > 0) {
    lines.push('', 'Arguments:', ...subcommand.positionals.map((p) => column(placeholder(p.name), p.help)));
  }
  const flags = Object.entries(subcommand.flags).map(([name, flag]) => column(`--${kebab(name)}${flag.value ? ` ${flag.value}` : ''}`, flag.help));
  if (subcommand.scope) flags.push(column(`--${subcommand.scope} ${SCOPE_FLAGS[subcommand.scope].value}`, SCOPE_FLAGS[subcommand.scope].help));
  if (subcommand.write) for (const [name, flag] of Object.entries(WRITE_FLAGS)) flags.push(column(`--${kebab(name)} ${flag.value}`, flag.help));
  if (flags.length > 0) lines.push('', 'Options:', ...flags);
  lines.push('', 'Options of every client command:', ...HUB_OPTIONS_HELP.map(([flag, help]) => column(flag, help)));
  return lines.join('\n');
}

/** `lockstep task --help`: the group's subcommands. */
function groupHelp(group: string, subcommands: readonly Subcommand[]): string {
  return [
    `Usage: lockstep ${group} <command> [arguments] [options]`,
    '',
    'Commands:',
    ...subcommands.map((s) => column([s.words[1], ...s.positionals.map((p) => placeholder(p.name))].join(' '), s.summary)),
    '',
    `Run lockstep ${group} <command> --help for its arguments and options.`,
  ].join('\n');
}

/** The client commands' lines of the top-level usage. */
export function clientCommandsUsage(): string {
  return CLIENT_SUBCOMMANDS.map((s) => column([...s.words, ...s.positionals.map((p) => placeholder(p.name))].join(' '), s.summary)).join('\n');
}

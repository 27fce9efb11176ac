import { LockstepError, type AnyDomain, type Domain, type Event, type StateOf, type protocol } from '@lockstep/core';
import { z } from 'zod';
import { UsageError } from '../options.js';

/** What a command prints: lines for people, one JSON document for `--json`. */
export interface Report {
  lines: string[];
  json: unknown;
}

/** How a write went, for its report. */
export interface CommandOutcome<State = unknown> {
  stream: string;
  commandId: string;
  ack: protocol.CommandResult;
  /** The stream's confirmed state once the command's effect is in it. */
  state: State;
  /**
   * The events this command produced, as they reached this client; undefined when they did not
   * reach it one by one (a duplicate answered from the hub's memory, or a snapshot that covered them).
   */
  events: readonly Event[] | undefined;
}

/** Sends one command and reports once its effect is confirmed. */
export interface CommandOperation {
  kind: 'command';
  domain: AnyDomain;
  key: string;
  type: string;
  payload: unknown;
  expectedVersion?: number | undefined;
  commandId?: string | undefined;
  report(outcome: CommandOutcome): Report;
}

/** Reads a stream's state once it is in sync. */
export interface ReadOperation {
  kind: 'read';
  domain: AnyDomain;
  key: string;
  report(view: { stream: string; version: number; state: unknown }): Report;
}

/** Tails a stream until interrupted. */
export interface WatchOperation {
  kind: 'watch';
  stream: string;
}

export type Operation = CommandOperation | ReadOperation | WatchOperation;

/** A command-line option of one subcommand: `--name VALUE` (string) or `--name` (boolean). */
export interface Flag {
  type: 'string' | 'boolean';
  /** The value's placeholder in the help, e.g. `N`. */
  value?: string;
  help: string;
}

/** The arguments of one subcommand, by name: positionals by their name (a `variadic` one as a list), flags by their camelCase name. */
export type Input = Record<string, string | readonly string[] | boolean | undefined>;

/** One client subcommand: its words, its arguments and what it does with them. */
export interface Subcommand {
  /** `['task', 'create']`, or `['watch']`. */
  words: readonly string[];
  summary: string;
  /** Positional arguments, in order; each is required, but a last `variadic` one takes any number (none too). Names are camelCase (`sessionId` shows as SESSION_ID). */
  positionals: ReadonlyArray<{ name: string; help: string; variadic?: boolean }>;
  /** Options of this subcommand only, by camelCase name (`exitCode` is `--exit-code`). */
  flags: Readonly<Record<string, Flag>>;
  /** The stream key it takes: `--project` (tasks, focus) or `--tenant` (orchestration). */
  scope?: 'project' | 'tenant';
  /** A write: takes `--expected-version` and `--command-id`. */
  write?: boolean;
  build(input: Input, key: string): Operation;
}

export const kebab = (name: string) => name.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
export const placeholder = (name: string) => kebab(name).replace(/-/g, '_').toUpperCase();

/** How an argument is named in messages: `TITLE` for a positional, `--exit-code` for a flag. */
export function labelOf(subcommand: Subcommand, name: string): string {
  return subcommand.positionals.some((positional) => positional.name === name) ? placeholder(name) : `--${kebab(name)}`;
}

/** Every zod issue as `LABEL: message`, joined. */
export function describeIssues(issues: readonly z.core.$ZodIssue[], label: (name: string) => string): string {
  return issues
    .map((issue) => {
      const [first] = issue.path;
      return typeof first === 'string' ? `${label(first)}: ${issue.message}` : issue.message;
    })
    .join('; ');
}

/** Parses one argument's `value` with `schema`, or throws a UsageError naming it (`label`). */
export function parseValue<T>(schema: z.ZodType<T>, value: unknown, label: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new UsageError(parsed.error.issues.map((issue) => `${label}: ${issue.message}`).join('; '));
  return parsed.data;
}

/**
 * Validates a command's payload with the domain's own schema — the rules the hub applies — so a
 * payload the hub would refuse as invalid is a usage error here, before anything is sent.
 */
export function domainPayload(domain: Domain, type: string, payload: Record<string, unknown>, label: (name: string) => string): unknown {
  const defined = Object.fromEntries(Object.entries(payload).filter(([, value]) => value !== undefined));
  try {
    return domain.parseCommand(type, defined).payload;
  } catch (error) {
    const issues = error instanceof LockstepError ? (error.data as { issues?: z.core.$ZodIssue[] } | undefined)?.issues : undefined;
    if (issues) throw new UsageError(describeIssues(issues, label));
    throw error;
  }
}

/** A write of `type` on `<domain>/<key>`, its payload checked by the domain's schema (see {@link domainPayload}). */
export function domainWrite<D extends AnyDomain>(
  domain: D,
  subcommand: Subcommand,
  key: string,
  type: string,
  payload: Record<string, unknown>,
  report: (outcome: CommandOutcome<StateOf<D>>) => Report,
): CommandOperation {
  return { kind: 'command', domain, key, type, payload: domainPayload(domain, type, payload, (name) => labelOf(subcommand, name)), report };
}

/** A read of `<domain>/<key>` once it is in sync, reported from its typed state. */
export function domainRead<D extends AnyDomain>(
  domain: D,
  key: string,
  report: (view: { stream: string; version: number; state: StateOf<D> }) => Report,
): ReadOperation {
  return { kind: 'read', domain, key, report };
}

/** A whole number from a string argument (counts, exit codes, versions). */
export const integerArgument = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** Text for a table: columns padded to their widest cell, the last one left as it is. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

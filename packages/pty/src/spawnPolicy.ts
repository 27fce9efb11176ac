import { accessSync, constants, realpathSync, statSync } from 'node:fs';
import { delimiter, isAbsolute, resolve } from 'node:path';
import { LockstepError, STREAM_KEY_PATTERN } from '@lockstep/core';
import * as z from 'zod';
import { terminalIdSchema, terminalSizeSchema } from './protocol.js';

/**
 * Variables of the hub's own environment a terminal inherits by default — when they are set. Nothing
 * else of the hub's environment (tokens, database URLs, cloud credentials) reaches a terminal unless
 * the policy or the spawn names it.
 */
export const DEFAULT_INHERITED_ENV: readonly string[] = ['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'TMPDIR'];

/** Variables every terminal gets unless the policy or the spawn overrides them. */
export const DEFAULT_TERMINAL_ENV: Readonly<Record<string, string>> = { TERM: 'xterm-256color' };

export const DEFAULT_COLS = 80;
export const DEFAULT_ROWS = 24;

const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
const noNul = (text: string) => !text.includes('\0');

const envSchema = z.record(
  z.string().regex(ENV_NAME_PATTERN, 'environment variable names are [A-Za-z_][A-Za-z0-9_]*'),
  z
    .string()
    .max(32 * 1024)
    .refine(noNul, 'environment values cannot contain NUL'),
);

/** What {@link TerminalManager.spawn} (and {@link spawnTerminal}) accept. */
export const spawnOptionsSchema = z.strictObject({
  /** The terminal's id; one is generated when omitted. */
  id: terminalIdSchema.optional(),
  /** The executable: an absolute path, a path relative to `cwd`, or a bare name looked up on the terminal's `PATH`. */
  file: z.string().min(1).max(4096).refine(noNul, 'the file cannot contain NUL'),
  /** Its arguments, passed to the program as they are: no shell ever parses them. */
  args: z
    .array(
      z
        .string()
        .max(128 * 1024)
        .refine(noNul, 'arguments cannot contain NUL'),
    )
    .max(1024)
    .optional(),
  /** Working directory; must exist. Default: the policy's `cwd`. */
  cwd: z.string().min(1).max(4096).refine(noNul, 'the cwd cannot contain NUL').optional(),
  /** Extra variables for this terminal, on top of the inherited ones and the policy's. */
  env: envSchema.optional(),
  cols: terminalSizeSchema.optional(),
  rows: terminalSizeSchema.optional(),
  /**
   * The project the terminal belongs to: its lifecycle is recorded as a session of `tasks/<project>`
   * and its delivery follows the focus set of `focus/<project>`.
   */
  project: z.string().regex(STREAM_KEY_PATTERN, 'projects are stream keys').optional(),
  /** A display name for the session in the tasks stream. Default: the terminal id. */
  name: z.string().trim().min(1).max(200).optional(),
});

export type SpawnOptions = z.input<typeof spawnOptionsSchema>;

/** Rules every spawn goes through. Spawning happens on the server side only: clients cannot spawn. */
export interface SpawnPolicy {
  /** Names of the hub's environment variables a terminal inherits when they are set. Default {@link DEFAULT_INHERITED_ENV}. */
  inheritEnv?: readonly string[];
  /** Variables every terminal gets, after the inherited ones. Default {@link DEFAULT_TERMINAL_ENV}. */
  env?: Readonly<Record<string, string>>;
  /** Where inherited variables are read from. Default `process.env`. */
  sourceEnv?: Readonly<Record<string, string | undefined>>;
  /**
   * Executables that may be spawned (paths; compared after resolving symlinks). Default: any
   * executable file.
   */
  executables?: readonly string[];
  /** Working directory of spawns that name none. Default: `HOME` of the hub, else its cwd. */
  cwd?: string;
}

/** A spawn after validation: what is handed to node-pty. */
export interface ResolvedSpawn {
  /** Absolute path of the executable that was checked. */
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  cols: number;
  rows: number;
}

function invalid(message: string, data?: Record<string, unknown>): LockstepError {
  return new LockstepError('INVALID_PARAMS', message, data);
}

/** Parses spawn options, throwing `INVALID_PARAMS` with the zod issues. */
export function parseSpawnOptions(options: unknown): z.output<typeof spawnOptionsSchema> {
  const parsed = spawnOptionsSchema.safeParse(options);
  if (!parsed.success) throw invalid('invalid spawn options', { issues: parsed.error.issues });
  return parsed.data;
}

/** The environment of a terminal: the allow-listed part of the hub's, then the policy's, then the spawn's own. */
export function buildEnvironment(policy: SpawnPolicy, extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  const source = policy.sourceEnv ?? process.env;
  const env: Record<string, string> = {};
  for (const name of policy.inheritEnv ?? DEFAULT_INHERITED_ENV) {
    const value = Object.hasOwn(source, name) ? source[name] : undefined;
    if (value !== undefined) env[name] = value;
  }
  Object.assign(env, policy.env ?? DEFAULT_TERMINAL_ENV, extra);
  return env;
}

/**
 * Checks a spawn against the policy: a working directory that exists, an executable file (found on
 * the terminal's own `PATH` when given as a bare name) that the allow-list admits, and the
 * environment. Throws `INVALID_PARAMS` otherwise, before any process exists.
 */
export function resolveSpawn(options: z.output<typeof spawnOptionsSchema>, policy: SpawnPolicy = {}): ResolvedSpawn {
  const source = policy.sourceEnv ?? process.env;
  const cwd = resolve(options.cwd ?? policy.cwd ?? source['HOME'] ?? process.cwd());
  if (!isDirectory(cwd)) throw invalid(`working directory ${cwd} does not exist`, { cwd });
  const env = buildEnvironment(policy, options.env);
  const file = findExecutable(options.file, cwd, env['PATH']);
  if (file === undefined) throw invalid(`no executable ${JSON.stringify(options.file)}`, { file: options.file });
  if (policy.executables && !allowed(file, policy.executables)) {
    throw invalid(`executable ${file} is not allowed by the spawn policy`, { file });
  }
  return { file, args: [...(options.args ?? [])], cwd, env, cols: options.cols ?? DEFAULT_COLS, rows: options.rows ?? DEFAULT_ROWS };
}

/**
 * The executable a spawn of `file` runs: a path with a `/` taken relative to `cwd`, else looked up on
 * `path` (absolute entries only: a relative one would depend on the working directory); undefined
 * when there is none that is a file this process may execute.
 */
export function findExecutable(file: string, cwd: string, path: string | undefined): string | undefined {
  if (file.includes('/')) {
    const candidate = isAbsolute(file) ? file : resolve(cwd, file);
    return isExecutableFile(candidate) ? candidate : undefined;
  }
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue; // an empty or relative PATH entry would depend on the cwd
    const candidate = resolve(dir, file);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function allowed(file: string, executables: readonly string[]): boolean {
  const real = realpath(file);
  return executables.some((entry) => entry === file || (real !== undefined && realpath(entry) === real));
}

function realpath(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function isExecutableFile(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

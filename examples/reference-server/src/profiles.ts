import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LockstepError, SESSION_PROFILE_PATTERN } from '@lockstep/core';
import { DEFAULT_INHERITED_ENV, DEFAULT_TERMINAL_ENV, findExecutable } from '@lockstep/pty';
import { z } from 'zod';
import type { ShellCommand } from './sessionTerminals.js';

/**
 * Session profiles: what the operator lets sessions run. A profile is a program with its argv, a
 * working directory, an environment allow-list and whether (and how) it takes a prompt; a client
 * picks one by name when it creates a session (`profile`), and may give a `prompt` — never a
 * program or an argument of its own. The built-in `shell` profile (the login shell, as the server
 * always ran) is the default. See "Profiles" in docs/terminals.md.
 */

/** How a profile's program gets the session's prompt. */
export const PROMPT_MODES = ['none', 'argv', 'stdin'] as const;
export type PromptMode = (typeof PROMPT_MODES)[number];

/** The profile every server has (unless its configuration replaces it), and the default one. */
export const SHELL_PROFILE = 'shell';

/**
 * A stdin prompt goes through the terminal's line discipline in canonical mode, which keeps at most
 * 4,095 bytes of a line (Linux's N_TTY buffer, less the newline): longer lines would be cut.
 */
export const MAX_STDIN_LINE_BYTES = 4_095;

/** Refusal reasons (in `details.reason` of `INVALID_PARAMS`), documented in docs/reference-server.md. */
export const PROFILE_REFUSALS = {
  unknown: 'profile.unknown',
  takesNoPrompt: 'profile.takesNoPrompt',
  controlCharacter: 'prompt.controlCharacter',
  lineTooLong: 'prompt.lineTooLong',
} as const;

const ENV_NAME = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,255}$/, 'environment variable names are [A-Za-z_][A-Za-z0-9_]*');
const noNul = (text: string) => !text.includes('\0');
export const profileNameSchema = z.string().regex(SESSION_PROFILE_PATTERN, 'a profile name: a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -');

/** One profile as an operator writes it (in a `--profiles` file, or built from `--profile`). */
export const profileConfigSchema = z.strictObject({
  /** Shown to clients (`GET /api/profiles`, the dashboard's picker). */
  description: z.string().max(500).optional(),
  /** The executable: an absolute path, a path relative to the file, or a name looked up on `PATH`. */
  program: z.string().min(1).max(4096).refine(noNul, 'no NUL'),
  /** Its arguments, exactly: no shell ever parses them. */
  args: z
    .array(
      z
        .string()
        .max(128 * 1024)
        .refine(noNul, 'no NUL'),
    )
    .max(1024)
    .default([]),
  /** Working directory (relative to the file). Default: the server's `terminalCwd`. */
  cwd: z.string().min(1).max(4096).refine(noNul, 'no NUL').optional(),
  /** Names of the server's environment variables the program gets (when set). Default: PATH, HOME, USER, LOGNAME, SHELL, LANG, LC_ALL, LC_CTYPE, TZ, TMPDIR. */
  inheritEnv: z.array(ENV_NAME).max(256).optional(),
  /** Variables set for the program, on top of the inherited ones. */
  env: z
    .record(
      ENV_NAME,
      z
        .string()
        .max(32 * 1024)
        .refine(noNul, 'no NUL'),
    )
    .default({}),
  /** `argv`: the prompt is the last argument; `stdin`: it is typed into the terminal, then end-of-file; `none` (default): no prompt. */
  prompt: z.enum(PROMPT_MODES).default('none'),
});
export type ProfileConfig = z.input<typeof profileConfigSchema>;

/** A `--profiles` file. */
export const profilesFileSchema = z.strictObject({
  /** The profile of a session that names none. Default `shell`. */
  default: profileNameSchema.optional(),
  profiles: z.record(profileNameSchema, profileConfigSchema),
});
export type ProfilesFile = z.output<typeof profilesFileSchema>;

/** A profile checked and resolved at start: an executable that exists, a directory that exists. */
export interface SessionProfile {
  readonly name: string;
  readonly description: string;
  /** Absolute path of the executable. */
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly inheritEnv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly prompt: PromptMode;
}

/** What `GET /api/profiles` shows of a profile. */
export interface ProfileInfo {
  name: string;
  description: string;
  acceptsPrompt: boolean;
  /** How the prompt reaches the program (`none` when it takes none). */
  prompt: PromptMode;
  default: boolean;
}

/** What to spawn for one session. */
export interface Launch {
  profile: SessionProfile;
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Typed into the terminal once it runs (a stdin prompt, then end-of-file), if anything. */
  input: string | undefined;
}

export interface ProfilesOptions {
  /** The built-in `shell` profile's program. */
  shell: ShellCommand;
  /** Working directory of profiles that name none. */
  cwd: string;
  /** More profiles (a profile named `shell` replaces the built-in one). */
  profiles?: Readonly<Record<string, ProfileConfig>>;
  /** Default `shell`. */
  defaultProfile?: string;
  /** The server's environment, for inherited variables and the `PATH` programs are looked up on. Default `process.env`. */
  sourceEnv?: Readonly<Record<string, string | undefined>>;
}

/** The profiles a server offers, resolved at start: a bad one fails the start, not a session. */
export class Profiles {
  readonly defaultName: string;
  readonly #profiles: ReadonlyMap<string, SessionProfile>;
  readonly #sourceEnv: Readonly<Record<string, string | undefined>>;

  private constructor(profiles: Map<string, SessionProfile>, defaultName: string, sourceEnv: Readonly<Record<string, string | undefined>>) {
    this.#profiles = profiles;
    this.defaultName = defaultName;
    this.#sourceEnv = sourceEnv;
  }

  /** Checks and resolves every profile; throws an Error that names the profile and what is wrong. */
  static create(options: ProfilesOptions): Profiles {
    const sourceEnv = options.sourceEnv ?? process.env;
    const baseDir = options.cwd;
    const configs: Record<string, ProfileConfig> = {
      [SHELL_PROFILE]: { description: `A login shell (${options.shell.file})`, program: options.shell.file, args: [...options.shell.args] },
      ...options.profiles,
    };
    const resolved = new Map<string, SessionProfile>();
    for (const [name, raw] of Object.entries(configs)) {
      if (!SESSION_PROFILE_PATTERN.test(name))
        throw new Error(`profile ${JSON.stringify(name)}: ${profileNameSchema.safeParse(name).error?.issues[0]?.message}`);
      const parsed = profileConfigSchema.safeParse(raw);
      if (!parsed.success)
        throw new Error(`profile ${name}: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || 'profile'}: ${issue.message}`).join('; ')}`);
      const config = parsed.data;
      const cwd = config.cwd === undefined ? resolve(options.cwd) : resolve(baseDir, config.cwd);
      if (!isDirectory(cwd)) throw new Error(`profile ${name}: working directory ${cwd} does not exist`);
      const inheritEnv = config.inheritEnv ?? DEFAULT_INHERITED_ENV;
      const path = Object.hasOwn(config.env, 'PATH') ? config.env['PATH'] : inheritEnv.includes('PATH') ? sourceEnv['PATH'] : undefined;
      const file = findExecutable(config.program, baseDir, path);
      if (file === undefined) {
        throw new Error(`profile ${name}: no executable ${JSON.stringify(config.program)}${config.program.includes('/') ? '' : ' on its PATH'}`);
      }
      resolved.set(name, {
        name,
        description: config.description ?? `${config.program}${config.args.length > 0 ? ` ${config.args.join(' ')}` : ''}`,
        file,
        args: config.args,
        cwd,
        inheritEnv,
        env: config.env,
        prompt: config.prompt,
      });
    }
    const defaultName = options.defaultProfile ?? SHELL_PROFILE;
    if (!resolved.has(defaultName))
      throw new Error(`the default profile ${JSON.stringify(defaultName)} is not one of the profiles (${[...resolved.keys()].join(', ')})`);
    return new Profiles(resolved, defaultName, sourceEnv);
  }

  get names(): string[] {
    return [...this.#profiles.keys()];
  }

  get(name: string): SessionProfile | undefined {
    return this.#profiles.get(name);
  }

  /** Every profile's executable: the spawn policy's allow-list. */
  get executables(): string[] {
    return [...new Set([...this.#profiles.values()].map((profile) => profile.file))];
  }

  /** The profiles as clients see them, the default first. */
  list(): ProfileInfo[] {
    return [...this.#profiles.values()]
      .sort((a, b) => Number(b.name === this.defaultName) - Number(a.name === this.defaultName))
      .map((profile) => ({
        name: profile.name,
        description: profile.description,
        acceptsPrompt: profile.prompt !== 'none',
        prompt: profile.prompt,
        default: profile.name === this.defaultName,
      }));
  }

  /**
   * Throws `INVALID_PARAMS` (with `details.reason`, one of {@link PROFILE_REFUSALS}) unless a session
   * may be created with this profile and prompt on this server.
   */
  check(profileName: string | undefined, prompt: string | undefined): SessionProfile {
    const name = profileName ?? this.defaultName;
    const profile = this.#profiles.get(name);
    if (!profile) {
      throw refusal(PROFILE_REFUSALS.unknown, ['profile'], `no profile ${JSON.stringify(name)} on this server: one of ${this.names.join(', ')}`, {
        profile: name,
        profiles: this.names,
      });
    }
    if (prompt === undefined) return profile;
    if (profile.prompt === 'none') {
      throw refusal(PROFILE_REFUSALS.takesNoPrompt, ['prompt'], `profile ${name} takes no prompt`, { profile: name });
    }
    if (profile.prompt === 'stdin') {
      const text = prompt.replace(/\r\n/g, '\n');
      // Control characters would be the terminal's (^C interrupts, ^D ends the input): refused, not sent.
      // eslint-disable-next-line no-control-regex -- control characters are what this looks for
      const control = /[\x00-\x08\x0b-\x1f\x7f]/.exec(text);
      if (control) {
        throw refusal(
          PROFILE_REFUSALS.controlCharacter,
          ['prompt'],
          `a prompt typed into the terminal cannot hold control characters (found U+${control[0].charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}); only tab and newline`,
          {
            profile: name,
          },
        );
      }
      const longest = Math.max(...text.split('\n').map((line) => Buffer.byteLength(line)));
      if (longest > MAX_STDIN_LINE_BYTES) {
        throw refusal(
          PROFILE_REFUSALS.lineTooLong,
          ['prompt'],
          `a prompt typed into the terminal has lines of at most ${MAX_STDIN_LINE_BYTES} bytes (the terminal's line buffer); this one has ${longest}`,
          {
            profile: name,
            maxLineBytes: MAX_STDIN_LINE_BYTES,
          },
        );
      }
    }
    return profile;
  }

  /** What to spawn for a session (its profile and prompt checked as {@link check} does). */
  launch(session: { id: string; profile?: string | undefined; prompt?: string | undefined }, project: string): Launch {
    const profile = this.check(session.profile, session.prompt);
    const env: Record<string, string> = {};
    for (const name of profile.inheritEnv) {
      const value = Object.hasOwn(this.#sourceEnv, name) ? this.#sourceEnv[name] : undefined;
      if (value !== undefined) env[name] = value;
    }
    Object.assign(env, DEFAULT_TERMINAL_ENV, profile.env, { LOCKSTEP_SESSION_ID: session.id, LOCKSTEP_PROJECT: project });
    const args = [...profile.args];
    let input: string | undefined;
    if (session.prompt !== undefined && profile.prompt === 'argv') args.push(session.prompt);
    if (session.prompt !== undefined && profile.prompt === 'stdin') {
      const text = session.prompt.replace(/\r\n/g, '\n');
      // The prompt's lines, then ^D at the start of a line: the program reads end-of-file.
      input = `${text}${text.endsWith('\n') || text === '' ? '' : '\n'}\x04`;
    }
    return { profile, file: profile.file, args, cwd: profile.cwd, env, input };
  }
}

function refusal(reason: string, path: string[], message: string, details: Record<string, unknown>): LockstepError {
  return new LockstepError('INVALID_PARAMS', message, { reason, ...details, issues: [{ code: 'custom', path, message }] });
}

/**
 * `--profile NAME[:PROMPT]=PROGRAM [ARG…]`: the words after `=` split on spaces (no quoting: a
 * profile whose arguments hold spaces goes in a `--profiles` file). PROMPT is `argv`, `stdin` or `none`.
 */
export function parseProfileFlag(value: string): [string, ProfileConfig] {
  const match = /^([^=:\s]+)(?::([a-z]+))?=(.*)$/s.exec(value);
  if (!match) throw new Error(`--profile ${JSON.stringify(value)}: expected NAME[:PROMPT]=PROGRAM [ARG…], e.g. agent:argv=node agent.mjs`);
  const [, name = '', prompt, command = ''] = match;
  if (!SESSION_PROFILE_PATTERN.test(name)) throw new Error(`--profile ${name}: a profile name is a letter or digit, then up to 63 of A-Z a-z 0-9 . _ -`);
  if (prompt !== undefined && !(PROMPT_MODES as readonly string[]).includes(prompt))
    throw new Error(`--profile ${name}:${prompt}: the prompt mode is one of ${PROMPT_MODES.join(', ')}`);
  const [program, ...args] = command.split(' ').filter((word) => word !== '');
  if (program === undefined) throw new Error(`--profile ${name}: no program after =`);
  return [name, { program, args, ...(prompt !== undefined && { prompt: prompt as PromptMode }) }];
}

/**
 * Reads and checks a `--profiles` file (JSON). Relative paths in it (a `program` with a `/`, a `cwd`)
 * are relative to its directory, and answered absolute.
 */
export async function loadProfilesFile(file: string): Promise<{ default?: string; profiles: Record<string, ProfileConfig> }> {
  const path = resolve(file);
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (error) {
    throw new Error(`--profiles ${path}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  const parsed = profilesFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new Error(`--profiles ${path}: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(top)'}: ${issue.message}`).join('; ')}`);
  }
  const baseDir = dirname(path);
  const profiles: Record<string, ProfileConfig> = {};
  for (const [name, profile] of Object.entries(parsed.data.profiles)) {
    profiles[name] = {
      ...profile,
      ...(profile.program.includes('/') && { program: resolve(baseDir, profile.program) }),
      ...(profile.cwd !== undefined && { cwd: resolve(baseDir, profile.cwd) }),
    };
  }
  return { ...(parsed.data.default !== undefined && { default: parsed.data.default }), profiles };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

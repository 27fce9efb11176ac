import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { DEFAULT_DATA_DIR, DEFAULT_HOST, DEFAULT_PORT } from './contract.js';
import { loadProfilesFile, parseProfileFlag, type ProfileConfig } from './profiles.js';

/** A command line that does not make sense: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const USAGE = `Usage: pnpm start [options]

Runs the Lockstep reference server: the dashboard at /, the REST + SSE API at /api, lockstep/1 over
WebSocket at /lockstep, and a terminal per session running its profile (a shell by default) — on
one port.

Options:
  --port N                 port to listen on (default: $PORT, else ${DEFAULT_PORT}; 0 picks a free one)
  --host H                 interface to listen on (default ${DEFAULT_HOST})
  --data DIR               directory of the embedded file store (default ${DEFAULT_DATA_DIR})
  --store memory           keep events in memory only (gone on exit)
  --store postgres://USER@HOST:PORT/DB[?schema=NAME]
                           keep events in PostgreSQL instead of the file store
  --no-terminals           give sessions no programs (e.g. on all but one of several servers sharing a database)
  --profile NAME[:PROMPT]=PROGRAM [ARG…]
                           one more program sessions may run (repeatable); PROMPT is how it takes the
                           session's prompt: argv (last argument), stdin (typed in, then end-of-file)
                           or none (default). Words split on spaces; e.g.
                           --profile 'agent:argv=node examples/reference-server/agent/agent.mjs'
  --profiles FILE          profiles from a JSON file: {"default"?: NAME, "profiles": {NAME: {program,
                           args?, cwd?, inheritEnv?, env?, prompt?, description?}}}
  --default-profile NAME   the profile of sessions that name none (default: the file's, else shell)
  --token-file PATH        the token clients must present, read from PATH (generated there if missing)
                           (default: $LOCKSTEP_TOKEN, else DIR/token, generated on first start, mode 0600)
  --allowed-host NAME[:PORT]
                           one more host name to answer to (repeatable), e.g. the name and port Docker maps
  --allowed-origin ORIGIN  one more browser origin allowed to call the server (repeatable)
  --insecure-no-auth       serve without a token: anyone who can reach the port drives the shells
                           (refused unless --host is a loopback address)
  --help                   show this text

Every request needs the token: Authorization: Bearer <token> (REST, SSE, WebSocket), the
lockstep.bearer.<base64url> WebSocket subprotocol entry, or the cookie the login URL printed at
start sets in a browser. The lockstep CLI on this machine finds it by itself.

Exit codes: 0 stopped on request, 1 failed (port taken, store in use), 2 bad command line.`;

const portSchema = z.coerce.number().int().min(0).max(65_535);

export const mainOptionsSchema = z
  .strictObject({
    port: portSchema,
    host: z.string().min(1).default(DEFAULT_HOST),
    data: z
      .string()
      .min(1)
      .transform((dir) => resolve(dir))
      .optional(),
    store: z
      .string()
      .refine((value) => value === 'memory' || /^postgres(?:ql)?:\/\/./i.test(value), { message: 'expected memory or a postgres:// URL' })
      .optional(),
    'no-terminals': z.boolean().default(false),
    profile: z.array(z.string()).optional(),
    profiles: z
      .string()
      .min(1)
      .transform((file) => resolve(file))
      .optional(),
    'default-profile': z.string().min(1).optional(),
    'token-file': z
      .string()
      .min(1)
      .transform((file) => resolve(file))
      .optional(),
    'allowed-host': z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/]+)(:\d{1,5})?$/, 'expected NAME or NAME:PORT')).default([]),
    'allowed-origin': z.array(z.string().refine((value) => /^https?:\/\/[^/\s]+$/.test(value), { message: 'expected http(s)://HOST[:PORT]' })).default([]),
    'insecure-no-auth': z.boolean().default(false),
    help: z.boolean().default(false),
  })
  .refine((options) => !(options['insecure-no-auth'] && options['token-file'] !== undefined), {
    message: '--insecure-no-auth serves without a token; it cannot be combined with --token-file',
  })
  .refine((options) => !(options.data !== undefined && options.store !== undefined), {
    message: "--data names the file store's directory; it cannot be combined with --store",
  })
  .refine(
    (options) => !(options['no-terminals'] && (options.profile !== undefined || options.profiles !== undefined || options['default-profile'] !== undefined)),
    {
      message: '--no-terminals runs no programs: --profile, --profiles and --default-profile need terminals',
    },
  );

export type MainOptions = z.infer<typeof mainOptionsSchema>;

/**
 * The profiles the command line gives: `--profiles FILE` (read here) and every `--profile`, which
 * may not name a profile twice. Throws UsageError with a readable message.
 */
export async function profilesOf(options: MainOptions): Promise<{ profiles?: Record<string, ProfileConfig>; defaultProfile?: string }> {
  const profiles: Record<string, ProfileConfig> = {};
  let fileDefault: string | undefined;
  try {
    if (options.profiles !== undefined) {
      const file = await loadProfilesFile(options.profiles);
      Object.assign(profiles, file.profiles);
      fileDefault = file.default;
    }
    for (const flag of options.profile ?? []) {
      const [name, profile] = parseProfileFlag(flag);
      if (Object.hasOwn(profiles, name)) throw new Error(`--profile ${name}: profile ${name} is given twice`);
      profiles[name] = profile;
    }
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const defaultProfile = options['default-profile'] ?? fileDefault;
  return {
    ...(Object.keys(profiles).length > 0 && { profiles }),
    ...(defaultProfile !== undefined && { defaultProfile }),
  };
}

/** Parses the command line (and `PORT`); throws UsageError with a readable message. */
export function parseMainOptions(args: readonly string[], env: Readonly<Record<string, string | undefined>> = process.env): MainOptions {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      // `pnpm start -- --port 8080` passes the `--` through.
      args: args[0] === '--' ? args.slice(1) : [...args],
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        data: { type: 'string' },
        store: { type: 'string' },
        'no-terminals': { type: 'boolean' },
        profile: { type: 'string', multiple: true },
        profiles: { type: 'string' },
        'default-profile': { type: 'string' },
        'token-file': { type: 'string' },
        'allowed-host': { type: 'string', multiple: true },
        'allowed-origin': { type: 'string', multiple: true },
        'insecure-no-auth': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const port = values['port'] ?? (env['PORT'] === undefined || env['PORT'] === '' ? DEFAULT_PORT : env['PORT']);
  const parsed = mainOptionsSchema.safeParse({ ...values, port });
  if (!parsed.success) {
    const detail = parsed.error.issues
      .map((issue) => {
        const option = issue.path[0] === 'port' && values['port'] === undefined ? 'PORT' : issue.path.length ? `--${issue.path.join('.')}` : '';
        return option ? `${option}: ${issue.message}` : issue.message;
      })
      .join('; ');
    throw new UsageError(detail);
  }
  return parsed.data;
}

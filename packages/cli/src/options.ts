import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { z } from 'zod';

/** A command line that does not make sense: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';

  /** @param usage the help of the command at fault, printed instead of the general usage. */
  constructor(
    message: string,
    readonly usage?: string,
  ) {
    super(message);
  }
}

export const DEFAULT_PORT = 7420;
export const DEFAULT_HOST = '127.0.0.1';

const port = z.coerce.number().int().min(0).max(65_535);

/** Where `lockstep serve` keeps its events: one variant per `--store` form. */
export type StoreSpec = { kind: 'memory' } | { kind: 'file'; directory: string } | { kind: 'postgres'; url: string };

/**
 * The `--store` forms, one branch each: a branch answers the spec for a value it recognises, or
 * undefined. A new store adds a branch here, a case in `openStore` (serve.ts) and a line in USAGE.
 */
const STORE_FORMS: ReadonlyArray<{ form: string; parse: (value: string) => StoreSpec | undefined }> = [
  { form: 'memory', parse: (value) => (value === 'memory' ? { kind: 'memory' } : undefined) },
  {
    form: 'file:DIR',
    parse: (value) =>
      value.startsWith('file:') && value.length > 'file:'.length ? { kind: 'file', directory: resolve(value.slice('file:'.length)) } : undefined,
  },
  // Checked here only by its scheme: the driver reads the rest (and @lockstep/postgres, with pg, is
  // loaded only when this form is used).
  { form: 'postgres://…', parse: (value) => (/^postgres(ql)?:\/\/./i.test(value) ? { kind: 'postgres', url: value } : undefined) },
];

export const storeSpecSchema = z.string().transform((value, context): StoreSpec => {
  for (const { parse } of STORE_FORMS) {
    const spec = parse(value);
    if (spec) return spec;
  }
  context.addIssue({ code: 'custom', message: `expected ${STORE_FORMS.map((f) => f.form).join(' or ')}, got ${JSON.stringify(value)}` });
  return z.NEVER;
});

/** How a store spec is shown (in the ready line and in messages). */
export function describeStore(spec: StoreSpec): string {
  switch (spec.kind) {
    case 'memory':
      return 'memory';
    case 'file':
      return `file:${spec.directory}`;
    case 'postgres':
      return redactPassword(spec.url);
  }
}

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`: ready lines end up in logs. */
function redactPassword(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:@/?#]*:)[^@/?#]*@/i, '$1***@');
}

/**
 * The hub's limits as `lockstep serve` states them (see docs/cli.md). The defaults are the hub's and
 * the WebSocket server's own (`HUB_DEFAULTS`, `WS_SERVER_DEFAULTS`): an option not given is not passed.
 * The figures are repeated here, not imported, so that parsing a command line never loads the hub;
 * options.test.ts checks them against those constants.
 */
export const SERVE_LIMIT_DEFAULTS = {
  rateLimit: 1_000,
  maxConnectionsPerAddress: 256,
  maxSubscriptions: 4_096,
  closeTimeoutSeconds: 2,
} as const;

/** A whole number in [min, max] from a command-line string. */
const wholeNumber = (min: number, max: number) =>
  z.string().transform((value, context) => {
    const number = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
    if (number >= min && number <= max) return number;
    context.addIssue({ code: 'custom', message: `expected a whole number from ${min} to ${max}` });
    return z.NEVER;
  });

/** A whole number in [min, max], or `off` (false): no limit. */
const limitOrOff = (min: number, max: number) =>
  z.string().transform((value, context) => {
    if (value === 'off') return false as const;
    const number = /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
    if (number >= min && number <= max) return number;
    context.addIssue({ code: 'custom', message: `expected a whole number from ${min} to ${max}, or off` });
    return z.NEVER;
  });

/** Seconds, fractions allowed, as milliseconds. */
const seconds = (max: number) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'expected a number of seconds')
    .transform(Number)
    .pipe(z.number().max(max, `at most ${max} seconds`))
    .transform((value) => Math.round(value * 1000));

export const serveOptionsSchema = z
  .strictObject({
    port: port.default(DEFAULT_PORT),
    host: z.string().min(1).default(DEFAULT_HOST),
    store: storeSpecSchema.default({ kind: 'memory' }),
    codec: z.enum(['json', 'msgpack']).optional(),
    stdio: z.boolean().default(false),
    'token-file': z
      .string()
      .min(1)
      .transform((file) => resolve(file))
      .optional(),
    'allowed-host': z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/]+)(:\d{1,5})?$/, 'expected NAME or NAME:PORT')).default([]),
    'allowed-origin': z.array(z.string().regex(/^https?:\/\/[^/\s]+$/, 'expected http(s)://HOST[:PORT]')).default([]),
    'insecure-no-auth': z.boolean().default(false),
    /** Messages a second per connection (bursts of twice that), or false: no limit. */
    'rate-limit': limitOrOff(1, 1_000_000).optional(),
    /** WebSocket connections at once from one remote address, or false: no limit. */
    'max-connections-per-address': limitOrOff(1, 1_000_000).optional(),
    /** Subscriptions one connection may hold at once. */
    'max-subscriptions': wholeNumber(1, 1_000_000).optional(),
    /** Milliseconds a stopping hub waits for its sockets' closing handshakes. */
    'close-timeout': seconds(600).optional(),
    help: z.boolean().default(false),
  })
  .refine((options) => !(options.stdio && options.codec === 'msgpack'), {
    message: '--stdio speaks JSON (LSP framing); --codec msgpack applies to WebSocket only',
  })
  .refine((options) => !(options.stdio && (options['max-connections-per-address'] !== undefined || options['close-timeout'] !== undefined)), {
    message: '--max-connections-per-address and --close-timeout apply to WebSocket only; --stdio has one peer, the process that spawned it',
  })
  .refine((options) => !(options['insecure-no-auth'] && options['token-file'] !== undefined), {
    message: '--insecure-no-auth serves without a token; it cannot be combined with --token-file',
  })
  .refine((options) => !options['insecure-no-auth'] || isLoopbackHost(options.host), {
    message: '--insecure-no-auth is refused on a non-loopback --host: anyone on the network could use the hub',
  });

/** 127.0.0.0/8, ::1 and localhost: the interfaces only this machine reaches. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

export type ServeOptions = z.infer<typeof serveOptionsSchema>;

/** Parses `repair` arguments: `<dir> [--yes]` or `--help`; throws UsageError with a readable message. */
export function parseRepairOptions(args: readonly string[]): { directory: string; yes: boolean } | { help: true } {
  let parsed: { values: { yes?: boolean | undefined; help?: boolean | undefined }; positionals: string[] };
  try {
    parsed = parseArgs({
      args: [...args],
      options: { yes: { type: 'boolean', short: 'y' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.values.help) return { help: true };
  if (parsed.positionals.length !== 1 || parsed.positionals[0] === '') {
    throw new UsageError(
      `repair takes one data directory, got ${parsed.positionals.length === 0 ? 'none' : parsed.positionals.map((p) => JSON.stringify(p)).join(' ')}`,
    );
  }
  return { directory: resolve(parsed.positionals[0]!), yes: parsed.values.yes ?? false };
}

/** Parses `serve` arguments; throws UsageError with a readable message. */
export function parseServeOptions(args: readonly string[]): ServeOptions {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        store: { type: 'string' },
        codec: { type: 'string' },
        stdio: { type: 'boolean' },
        'token-file': { type: 'string' },
        'allowed-host': { type: 'string', multiple: true },
        'allowed-origin': { type: 'string', multiple: true },
        'insecure-no-auth': { type: 'boolean' },
        'rate-limit': { type: 'string' },
        'max-connections-per-address': { type: 'string' },
        'max-subscriptions': { type: 'string' },
        'close-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const parsed = serveOptionsSchema.safeParse(values);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((issue) => (issue.path.length ? `--${issue.path.join('.')}: ${issue.message}` : issue.message)).join('; ');
    throw new UsageError(detail);
  }
  return parsed.data;
}

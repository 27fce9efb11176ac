import { parseArgs } from 'node:util';
import { z } from 'zod';

/** A command line that does not make sense: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const DEFAULT_PORT = 7420;
export const DEFAULT_HOST = '127.0.0.1';

const port = z.coerce.number().int().min(0).max(65_535);

export const serveOptionsSchema = z
  .strictObject({
    port: port.default(DEFAULT_PORT),
    host: z.string().min(1).default(DEFAULT_HOST),
    store: z.enum(['memory']).default('memory'),
    codec: z.enum(['json', 'msgpack']).optional(),
    stdio: z.boolean().default(false),
  })
  .refine((options) => !(options.stdio && options.codec === 'msgpack'), {
    message: '--stdio speaks JSON (LSP framing); --codec msgpack applies to WebSocket only',
  });

export type ServeOptions = z.infer<typeof serveOptionsSchema>;

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

import * as z from 'zod';

/** Domain names: lowercase, starting with a letter. */
export const DOMAIN_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;
/** Stream keys: no slashes, no leading dot (so a key is always safe as a file name or SQL value). */
export const STREAM_KEY_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.:@-]{0,127}$/;
/** Command ids: client-chosen, globally unique, opaque. */
export const COMMAND_ID_PATTERN = /^[A-Za-z0-9_.:@-]{1,128}$/;

export const streamNameSchema = z.string().refine((name) => parseStreamName(name) !== undefined, {
  message: 'stream names are <domain>/<key>: a lowercase domain name and a key of letters, digits and _.:@-',
});

export const commandIdSchema = z.string().regex(COMMAND_ID_PATTERN, 'command ids are 1–128 characters of A-Z a-z 0-9 _ . : @ -');

export const versionSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export interface StreamName {
  readonly domain: string;
  readonly key: string;
}

/** Splits `tasks/proj_1` into its domain and key, or answers undefined when the name is invalid. */
export function parseStreamName(name: string): StreamName | undefined {
  const slash = name.indexOf('/');
  if (slash <= 0) return undefined;
  const domain = name.slice(0, slash);
  const key = name.slice(slash + 1);
  if (!DOMAIN_NAME_PATTERN.test(domain) || !STREAM_KEY_PATTERN.test(key)) return undefined;
  return { domain, key };
}

export function streamName(domain: string, key: string): string {
  const name = `${domain}/${key}`;
  if (!parseStreamName(name)) throw new RangeError(`invalid stream name: ${JSON.stringify(name)}`);
  return name;
}

/** A command as a client sends it. `payload` is validated against the domain's schema by the hub. */
export interface Command<Type extends string = string, Payload = unknown> {
  id: string;
  stream: string;
  type: Type;
  payload: Payload;
  expectedVersion?: number;
}

/** An event as it is stored and delivered: `version` is its position in the stream, from 1. */
export interface Event<Type extends string = string, Data = unknown> {
  version: number;
  type: Type;
  data: Data;
  /** Milliseconds since the epoch, from the hub's clock when the event was decided. */
  time: number;
  commandId?: string;
}

export const commandSchema = z.object({
  id: commandIdSchema,
  stream: streamNameSchema,
  type: z.string().min(1).max(128),
  payload: z.unknown(),
  expectedVersion: versionSchema.optional(),
});

export const eventSchema = z.object({
  version: versionSchema.min(1),
  type: z.string().min(1).max(128),
  data: z.unknown(),
  time: z.number(),
  commandId: commandIdSchema.optional(),
});

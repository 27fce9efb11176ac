import * as z from 'zod';
import { PersistenceError } from './PersistenceError.js';

/**
 * What a persistent client stores, one record per key, each carrying its own `format`:
 *
 * - `client`: the client's id (leases on the hub belong to it, so a restarted IDE keeps them);
 * - `stream/<domain>/<key>`: a stream's confirmed state, its version and the hub epoch it came
 *   from, and the commands still pending, with their ids (the hub deduplicates a re-sent one).
 *
 * A record of a format this release does not know (a newer one) is ignored and reported; an older
 * one is upgraded by {@link UPGRADES} on load. Records are plain JSON values.
 */
export const PERSISTED_FORMAT = 1;

export const CLIENT_KEY = 'client';
export const STREAM_KEY_PREFIX = 'stream/';

export const persistedCommandSchema = z.object({
  id: z.string(),
  type: z.string(),
  payload: z.unknown(),
  expectedVersion: z.number().int().nonnegative().optional(),
  time: z.number(),
  explicitAck: z.boolean(),
  /** The version the hub's ack named, when it came before the command's events. */
  ackVersion: z.number().int().nonnegative().optional(),
  /** Its events are in the stored confirmed state. */
  applied: z.boolean(),
});
export type PersistedCommand = z.infer<typeof persistedCommandSchema>;

export const persistedStreamSchema = z.object({
  format: z.literal(1),
  stream: z.string(),
  /** The hub log the confirmed state belongs to; absent when no state is stored. */
  epoch: z.string().optional(),
  /** 0 with no state: the stream is subscribed from scratch. */
  version: z.number().int().nonnegative(),
  state: z.unknown().optional(),
  pending: z.array(persistedCommandSchema),
  /** When it was written (the client's clock). */
  savedAt: z.number(),
});
export type PersistedStream = z.infer<typeof persistedStreamSchema>;

export const persistedClientSchema = z.object({
  format: z.literal(1),
  clientId: z.string().min(1),
});
export type PersistedClient = z.infer<typeof persistedClientSchema>;

/**
 * Upgrades from an older format to the next, by the format they start from. Empty while format 1 is
 * the only one; a release that changes a record adds `1: (old) => new` here and a golden fixture of
 * the old shape to the tests.
 */
export const UPGRADES: Readonly<Record<number, (record: Record<string, unknown>) => Record<string, unknown>>> = {};

/** Brings a stored value to the current format, or says why it cannot be used. */
export function upgradeRecord(key: string, value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PersistenceError('CORRUPT', `stored record ${key} is not an object`);
  let record = value as Record<string, unknown>;
  let format = record['format'];
  if (typeof format !== 'number' || !Number.isInteger(format)) throw new PersistenceError('CORRUPT', `stored record ${key} has no format`);
  if (format > PERSISTED_FORMAT)
    throw new PersistenceError('UNSUPPORTED_FORMAT', `stored record ${key} has format ${format}; this release reads up to ${PERSISTED_FORMAT}`);
  while (format < PERSISTED_FORMAT) {
    const upgrade = UPGRADES[format];
    if (!upgrade) throw new PersistenceError('UNSUPPORTED_FORMAT', `stored record ${key} has format ${format}, which this release cannot upgrade`);
    record = upgrade(record);
    format = record['format'];
    if (typeof format !== 'number') throw new PersistenceError('CORRUPT', `upgrading stored record ${key} lost its format`);
  }
  return record;
}

export interface LoadedRecords {
  clientId: string | undefined;
  streams: Map<string, PersistedStream>;
  /** Records that could not be used (corrupt, unknown format): reported, then overwritten. */
  problems: PersistenceError[];
}

/** Parses what a storage loaded: every record checked, none thrown. */
export function parseRecords(raw: ReadonlyMap<string, unknown>): LoadedRecords {
  const loaded: LoadedRecords = { clientId: undefined, streams: new Map(), problems: [] };
  for (const [key, value] of raw) {
    try {
      const record = upgradeRecord(key, value);
      if (key === CLIENT_KEY) {
        const client = persistedClientSchema.safeParse(record);
        if (!client.success) throw new PersistenceError('CORRUPT', `stored record ${key} is malformed`);
        loaded.clientId = client.data.clientId;
      } else if (key.startsWith(STREAM_KEY_PREFIX)) {
        const stream = persistedStreamSchema.safeParse(record);
        if (!stream.success || STREAM_KEY_PREFIX + stream.data.stream !== key) throw new PersistenceError('CORRUPT', `stored record ${key} is malformed`);
        loaded.streams.set(stream.data.stream, stream.data);
      }
      // Other keys belong to a later release (or another tool): left alone.
    } catch (error) {
      loaded.problems.push(PersistenceError.from(error));
    }
  }
  return loaded;
}

import { randomUUID } from 'node:crypto';
import type { Pool } from 'pg';

/** Schema names the store accepts: a plain lowercase SQL identifier, short enough to derive names from. */
export const SCHEMA_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,47}$/;
/** Channel names the store accepts (LISTEN takes an identifier, at most 63 bytes). */
export const CHANNEL_NAME_PATTERN = /^[a-z_][a-z0-9_]{0,62}$/;

/** `"name"`: only ever applied to names checked against the patterns above, never to user data. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The SQL of each migration, in order; migration N (from 1) is `MIGRATIONS[N - 1]`. Never edit one that shipped. */
function migrations(s: string): string[] {
  return [
    `
    CREATE TABLE ${s}.meta (
      singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
      epoch text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${s}.heads (
      stream text PRIMARY KEY,
      head bigint NOT NULL CHECK (head >= 0),
      oldest_retained bigint NOT NULL DEFAULT 1 CHECK (oldest_retained >= 1 AND oldest_retained <= head + 1)
    );
    CREATE TABLE ${s}.events (
      stream text NOT NULL,
      version bigint NOT NULL CHECK (version >= 1),
      type text NOT NULL,
      data json NOT NULL,
      time double precision NOT NULL,
      command_id text,
      schema_version integer NOT NULL DEFAULT 1,
      PRIMARY KEY (stream, version)
    );
    CREATE TABLE ${s}.commands (
      command_id text PRIMARY KEY,
      stream text NOT NULL,
      fingerprint text NOT NULL,
      version bigint NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX commands_recorded_at ON ${s}.commands (recorded_at);
    CREATE TABLE ${s}.snapshots (
      stream text PRIMARY KEY,
      version bigint NOT NULL,
      state json NOT NULL,
      saved_at timestamptz NOT NULL DEFAULT now()
    );
    `,
    // 2: refused commands are recorded too (no events, the refusal kept), so every hub gives a
    // refused command id the same answer.
    `ALTER TABLE ${s}.commands ADD COLUMN refusal json;`,
    // 3: which lease holders are connected to which hub, so a hub does not expire the leases of a
    // client connected to another one; a hub's rows count while its heartbeat is fresh.
    `
    CREATE TABLE ${s}.hubs (
      hub_id text PRIMARY KEY,
      seen_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE ${s}.presence (
      hub_id text NOT NULL REFERENCES ${s}.hubs (hub_id) ON DELETE CASCADE,
      holder text NOT NULL,
      PRIMARY KEY (hub_id, holder)
    );
    CREATE INDEX presence_holder ON ${s}.presence (holder);
    `,
    // 4: when each lease holder was last seen leaving a hub, so every hub times a holder's grace
    // period from the same moment (the database's clock) rather than from its own view.
    `
    CREATE TABLE ${s}.holders (
      holder text PRIMARY KEY,
      last_seen timestamptz NOT NULL
    );
    CREATE INDEX holders_last_seen ON ${s}.holders (last_seen);
    `,
  ];
}

/** The newest schema version this release knows. */
export const SCHEMA_VERSION = migrations('s').length;

/**
 * Brings `schema` up to {@link SCHEMA_VERSION} and answers the store's epoch. Idempotent, and safe
 * when several hubs start at once: everything runs in one transaction under an advisory lock keyed
 * by the schema name, so the second hub waits and then finds nothing left to do.
 */
export async function migrate(pool: Pool, schema: string): Promise<string> {
  const s = quoteIdentifier(schema);
  const client = await pool.connect();
  let failed: unknown;
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`lockstep.migrate:${schema}`]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ version: number | null }>(`SELECT max(version) AS version FROM ${s}.migrations`);
    const current = rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(`schema ${schema} is at version ${current}, written by a newer @lockstep/postgres; this one knows up to version ${SCHEMA_VERSION}`);
    }
    const steps = migrations(s);
    for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
      await client.query(steps[version - 1]!);
      await client.query(`INSERT INTO ${s}.migrations (version) VALUES ($1)`, [version]);
    }
    // The epoch is made once, with the store; every later open reads the same one.
    await client.query(`INSERT INTO ${s}.meta (epoch) VALUES ($1) ON CONFLICT (singleton) DO NOTHING`, [randomUUID()]);
    const meta = await client.query<{ epoch: string }>(`SELECT epoch FROM ${s}.meta`);
    await client.query('COMMIT');
    return meta.rows[0]!.epoch;
  } catch (error) {
    failed = error;
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    // A connection that failed mid-transaction is closed rather than handed back to the pool.
    client.release(failed !== undefined);
  }
}

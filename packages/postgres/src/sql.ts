import { createHash } from 'node:crypto';

/** A statement prepared once per connection, under a name derived from its text. */
export interface Statement {
  name: string;
  text: string;
}

/** Prepared statement names: short, and the same text always gets the same name on every connection. */
function prepared(text: string): Statement {
  return { name: `lockstep_${createHash('sha256').update(text).digest('hex').slice(0, 24)}`, text };
}

/** Every statement of the store, for one (quoted) schema. */
export function statements(s: string) {
  // After the `moved` CTE (the head check): the commits' rows, inserted only if the head row moved,
  // and a NOTIFY only if the head grew (a call of commits without events leaves it where it was).
  const rest = `
    commands AS (
      INSERT INTO ${s}.commands (command_id, stream, fingerprint, version, refusal)
      SELECT c.id, $1, c.fingerprint, c.version, c.refusal
      FROM unnest($4::text[], $5::text[], $6::bigint[], $15::json[]) AS c(id, fingerprint, version, refusal)
      WHERE EXISTS (SELECT FROM moved)
    ),
    events AS (
      INSERT INTO ${s}.events (stream, version, type, data, time, command_id, schema_version)
      SELECT $1, e.version, e.type, e.data, e.time, e.command_id, e.schema_version
      FROM unnest($7::bigint[], $8::text[], $9::json[], $10::float8[], $11::text[], $12::int[])
        AS e(version, type, data, time, command_id, schema_version)
      WHERE EXISTS (SELECT FROM moved)
    ),
    notified AS (
      SELECT pg_notify($13, $14) FROM moved WHERE $3::bigint > $2::bigint
    )
    SELECT EXISTS (SELECT FROM moved) AS appended, (SELECT count(*) FROM notified) AS notified`;
  const texts = {
    info: `SELECT head, oldest_retained FROM ${s}.heads WHERE stream = $1`,
    // The head row is the lock: its UPDATE waits for any other writer of the stream, then checks
    // the head that writer left.
    append: `
      WITH moved AS (
        UPDATE ${s}.heads SET head = $3 WHERE stream = $1 AND head = $2::bigint RETURNING head
      ),${rest}`,
    // A new stream: create its head row, or (when another writer created it first) move it only if
    // it is still at 0.
    appendNew: `
      WITH moved AS (
        INSERT INTO ${s}.heads AS h (stream, head) VALUES ($1, $3)
        ON CONFLICT (stream) DO UPDATE SET head = excluded.head WHERE h.head = $2::bigint
        RETURNING h.head
      ),${rest}`,
    read: `
      SELECT version, type, data, time, command_id, schema_version FROM ${s}.events
      WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`,
    findCommands: `SELECT command_id, stream, fingerprint, version, refusal FROM ${s}.commands WHERE command_id = ANY($1::text[])`,
    loadSnapshot: `SELECT version, state FROM ${s}.snapshots WHERE stream = $1`,
    saveSnapshot: `
      INSERT INTO ${s}.snapshots AS snap (stream, version, state) VALUES ($1, $2, $3::json)
      ON CONFLICT (stream) DO UPDATE SET version = excluded.version, state = excluded.state, saved_at = now()
      WHERE snap.version <= excluded.version`,
    // The cut: below before, at most one past the snapshot and the head, never backwards. Moving
    // oldest_retained locks the head row, so a compaction and an append of a stream do not interleave.
    compact: `
      WITH cut AS (
        UPDATE ${s}.heads AS h
        SET oldest_retained = LEAST($2::bigint, snap.version + 1, h.head + 1)
        FROM ${s}.snapshots AS snap
        WHERE h.stream = $1 AND snap.stream = $1 AND LEAST($2::bigint, snap.version + 1, h.head + 1) > h.oldest_retained
        RETURNING h.oldest_retained
      )
      DELETE FROM ${s}.events WHERE stream = $1 AND version < (SELECT oldest_retained FROM cut)`,
    streams: `SELECT stream FROM ${s}.heads ORDER BY stream`,
    heads: `SELECT stream, head FROM ${s}.heads`,
    // Presence uses the database's clock, the same for every hub. A heartbeat also drops hubs silent
    // for a day (crashed processes), with their rows, and holders nobody has seen for a day.
    presenceHeartbeat: `
      WITH beat AS (
        INSERT INTO ${s}.hubs AS h (hub_id) VALUES ($1) ON CONFLICT (hub_id) DO UPDATE SET seen_at = now()
      ), stale AS (
        DELETE FROM ${s}.holders WHERE last_seen < now() - interval '1 day'
      )
      DELETE FROM ${s}.hubs WHERE seen_at < now() - interval '1 day' AND hub_id <> $1`,
    presenceEnter: `
      WITH hub AS (
        INSERT INTO ${s}.hubs AS h (hub_id) VALUES ($1) ON CONFLICT (hub_id) DO UPDATE SET seen_at = now() RETURNING hub_id
      )
      INSERT INTO ${s}.presence (hub_id, holder) SELECT hub_id, $2 FROM hub ON CONFLICT DO NOTHING`,
    presenceLeave: `
      WITH gone AS (
        DELETE FROM ${s}.presence WHERE hub_id = $1 AND holder = $2
      )
      INSERT INTO ${s}.holders AS o (holder, last_seen) VALUES ($2, now())
      ON CONFLICT (holder) DO UPDATE SET last_seen = greatest(o.last_seen, excluded.last_seen)`,
    presenceElsewhere: `
      SELECT EXISTS (
        SELECT FROM ${s}.presence AS p JOIN ${s}.hubs AS h USING (hub_id)
        WHERE p.holder = $2 AND p.hub_id <> $1 AND h.seen_at > now() - make_interval(secs => $3::float8 / 1000)
      ) AS present`,
    // The latest sighting: a hub that has the holder vouches for it until it stops counting (ttl
    // after its last heartbeat; now, while it beats), a departure is a sighting at that moment.
    // NULL when there is none.
    presenceSinceLastSeen: `
      SELECT (extract(epoch FROM now() - max(seen)) * 1000)::float8 AS ago FROM (
        SELECT least(now(), h.seen_at + make_interval(secs => $3::float8 / 1000)) AS seen
        FROM ${s}.presence AS p JOIN ${s}.hubs AS h USING (hub_id)
        WHERE p.holder = $2 AND p.hub_id <> $1
        UNION ALL
        SELECT last_seen FROM ${s}.holders WHERE holder = $2
      ) AS sightings`,
    // The hub's holders were last seen now; its rows go with it (ON DELETE CASCADE). Every part of
    // the statement reads the rows as they were before it.
    presenceForget: `
      WITH gone AS (
        DELETE FROM ${s}.hubs WHERE hub_id = $1
      )
      INSERT INTO ${s}.holders AS o (holder, last_seen) SELECT holder, now() FROM ${s}.presence WHERE hub_id = $1
      ON CONFLICT (holder) DO UPDATE SET last_seen = greatest(o.last_seen, excluded.last_seen)`,
    pruneCommands: `
      WITH deleted AS (DELETE FROM ${s}.commands WHERE recorded_at < $1 RETURNING 1)
      SELECT count(*) AS deleted FROM deleted`,
  };
  return Object.fromEntries(Object.entries(texts).map(([key, text]) => [key, prepared(text)])) as Record<keyof typeof texts, Statement>;
}

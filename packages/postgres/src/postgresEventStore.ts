import {
  StoreConflictError,
  snapshotJson,
  type CommandRecord,
  type Commit,
  type EventStore,
  type PresenceRegistry,
  type Snapshot,
  type StoredEvent,
  type StoredRefusal,
  type StreamInfo,
} from '@lockstep/server';
import { DatabaseError, Pool, type PoolConfig, type QueryConfig, type QueryResultRow } from 'pg';
import { NotifyListener } from './notifyListener.js';
import { CHANNEL_NAME_PATTERN, SCHEMA_NAME_PATTERN, migrate, quoteIdentifier } from './schema.js';
import { statements, type Statement } from './sql.js';

export interface PostgresEventStoreOptions {
  /** `postgres://user@host:port/database`; the store opens (and closes) its own pool. */
  connectionString?: string;
  /**
   * A pool you own instead: the store never ends it. `watch` keeps one of its connections for
   * LISTEN, so give it at least two.
   */
  pool?: Pool;
  /**
   * Where the LISTEN connection goes, when not where the queries go: a transaction-pooling proxy
   * (PgBouncer) can carry the queries but not LISTEN, which needs a direct or session-pooled route.
   * Default: a connection of the query pool.
   */
  listenConnectionString?: string;
  /** The schema holding the store's tables, created when missing. Default `lockstep`. */
  schema?: string;
  /** The NOTIFY channel. Default `lockstep` for the default schema, else `lockstep_<schema>`. */
  notifyChannel?: string;
  /** Connections of the store's own pool for queries (one more is opened for LISTEN). Default 10. */
  poolSize?: number;
  /** Server-side limit of one statement, in milliseconds, on the store's own pool. Default 30,000. */
  statementTimeoutMs?: number;
  /** How long to wait for a connection of the store's own pool, in milliseconds. Default 10,000. */
  connectionTimeoutMs?: number;
  /**
   * `application_name` of the store's connections, as `pg_stat_activity` shows them; the LISTEN
   * connection gets `<name>:listen`. Default `lockstep:<schema>`.
   */
  applicationName?: string;
  /** Backoff of the LISTEN connection's reconnects. Default 100 ms doubling up to 5 s, with jitter. */
  listenBackoff?: { initialMs: number; maxMs: number };
  /** How often the idle LISTEN connection is checked with `SELECT 1`. Default 15,000 ms; 0 turns it off. */
  listenHealthCheckMs?: number;
  /**
   * Background trouble the store recovered from: the LISTEN connection lost (and being
   * re-established), an idle pooled connection closed by the server. Default: console.error.
   */
  onError?: (error: unknown, context: string) => void;
}

export const POSTGRES_STORE_DEFAULTS = {
  schema: 'lockstep',
  poolSize: 10,
  statementTimeoutMs: 30_000,
  connectionTimeoutMs: 10_000,
  listenBackoff: { initialMs: 100, maxMs: 5_000 },
  listenHealthCheckMs: 15_000,
} as const;

/** The default NOTIFY channel of a schema. */
export function defaultNotifyChannel(schema: string): string {
  return schema === POSTGRES_STORE_DEFAULTS.schema ? 'lockstep' : `lockstep_${schema}`;
}

/** Attempts of an append whose head check failed against a head equal to the expected one (see `append`). */
const APPEND_ATTEMPTS = 3;

type Listener = (stream: string, head: number) => void;

interface EventRow {
  version: string;
  type: string;
  data: unknown;
  time: number;
  command_id: string | null;
  schema_version: number;
}

/**
 * An {@link EventStore} on PostgreSQL, shared by any number of hub processes.
 *
 * - `append` is one statement, so one implicit transaction and one round trip: it moves the
 *   stream's head row from `expectedHead` to the new head (the row lock serializes writers of a
 *   stream; a writer that lost sees another head and gets `StoreConflictError`), inserts the
 *   command records and the events, and NOTIFYs the channel, delivered at commit.
 *   Versions come from the head row, never from a sequence, so they have no gaps and become visible
 *   in order; unique `(stream, version)` and unique command ids back this up.
 * - `watch` LISTENs on a dedicated connection and reports every other hub's appends; after the
 *   connection is lost and regained it reports every stream's head, so hubs catch up on what they
 *   missed.
 *
 * Every value goes to the server as a query parameter; only the schema and channel names, checked
 * against strict patterns, are ever part of the SQL text.
 */
export class PostgresEventStore implements EventStore {
  readonly epoch: string;
  readonly schema: string;
  readonly notifyChannel: string;
  readonly #pool: Pool;
  readonly #ownsPool: boolean;
  readonly #sql: ReturnType<typeof statements>;
  readonly #listeners = new Set<Listener>();
  readonly #onError: (error: unknown, context: string) => void;
  readonly #options: PostgresEventStoreOptions;
  readonly #onPoolError: (error: Error) => void;
  /** The pool LISTEN takes its connection from: the query pool, or one of its own. */
  #listenPool: Pool | undefined;
  #listener: NotifyListener | undefined;
  #closed = false;

  private constructor(init: {
    pool: Pool;
    ownsPool: boolean;
    schema: string;
    channel: string;
    epoch: string;
    options: PostgresEventStoreOptions;
    onError: (error: unknown, context: string) => void;
    onPoolError: (error: Error) => void;
  }) {
    this.#pool = init.pool;
    this.#ownsPool = init.ownsPool;
    this.schema = init.schema;
    this.notifyChannel = init.channel;
    this.epoch = init.epoch;
    this.#options = init.options;
    this.#onError = init.onError;
    this.#onPoolError = init.onPoolError;
    this.#sql = statements(quoteIdentifier(init.schema));
  }

  /** Connects, migrates the schema (idempotent, safe when hubs start together) and opens the store. */
  static async open(options: PostgresEventStoreOptions): Promise<PostgresEventStore> {
    const schema = options.schema ?? POSTGRES_STORE_DEFAULTS.schema;
    if (!SCHEMA_NAME_PATTERN.test(schema)) {
      throw new RangeError(`invalid schema name ${JSON.stringify(schema)}: use lowercase letters, digits and _ (at most 48)`);
    }
    const channel = options.notifyChannel ?? defaultNotifyChannel(schema);
    if (!CHANNEL_NAME_PATTERN.test(channel)) {
      throw new RangeError(`invalid notify channel ${JSON.stringify(channel)}: use lowercase letters, digits and _ (at most 63)`);
    }
    if ((options.pool === undefined) === (options.connectionString === undefined)) {
      throw new TypeError('PostgresEventStore.open needs exactly one of connectionString and pool');
    }
    const onError = options.onError ?? ((error, context) => console.error(`[lockstep postgres] ${context}:`, error));
    const ownsPool = options.pool === undefined;
    const config: PoolConfig = {
      connectionString: options.connectionString,
      // One more than asked for: the LISTEN connection is held for as long as someone watches.
      max: (options.poolSize ?? POSTGRES_STORE_DEFAULTS.poolSize) + 1,
      statement_timeout: options.statementTimeoutMs ?? POSTGRES_STORE_DEFAULTS.statementTimeoutMs,
      connectionTimeoutMillis: options.connectionTimeoutMs ?? POSTGRES_STORE_DEFAULTS.connectionTimeoutMs,
      keepAlive: true,
      application_name: options.applicationName ?? `lockstep:${schema}`,
    };
    const pool = options.pool ?? new Pool(config);
    // An idle connection the server closes (a restart, pg_terminate_backend) is reported on the
    // pool; without a listener that would be an uncaught exception.
    const onPoolError = (error: Error) => onError(error, 'idle PostgreSQL connection lost');
    pool.on('error', onPoolError);
    try {
      const epoch = await migrate(pool, schema);
      return new PostgresEventStore({ pool, ownsPool, schema, channel, epoch, options, onError, onPoolError });
    } catch (error) {
      pool.off('error', onPoolError);
      if (ownsPool) await pool.end().catch(() => {});
      throw error;
    }
  }

  /** Runs a prepared statement (parsed once per connection). */
  async #query<Row extends QueryResultRow>(statement: Statement, values: unknown[]): Promise<Row[]> {
    if (this.#closed) throw new Error('the PostgreSQL event store is closed');
    const config: QueryConfig = { name: statement.name, text: statement.text, values };
    const result = await this.#pool.query<Row>(config);
    return result.rows;
  }

  async info(stream: string): Promise<StreamInfo> {
    const [row] = await this.#query<{ head: string; oldest_retained: string }>(this.#sql.info, [stream]);
    return row ? { head: Number(row.head), oldestRetained: Number(row.oldest_retained) } : { head: 0, oldestRetained: 1 };
  }

  async append(stream: string, expectedHead: number, commits: readonly Commit[]): Promise<void> {
    // Everything that can be checked here is, before the database sees anything.
    const commandIds: string[] = [];
    const fingerprints: string[] = [];
    const commandVersions: number[] = [];
    const refusals: Array<string | null> = [];
    const versions: number[] = [];
    const types: string[] = [];
    const data: string[] = [];
    const times: number[] = [];
    const eventCommandIds: Array<string | null> = [];
    const schemaVersions: number[] = [];
    const seen = new Set<string>();
    let next = expectedHead + 1;
    for (const commit of commits) {
      if (seen.has(commit.commandId)) throw new RangeError(`command id ${commit.commandId} appears twice in one append`);
      seen.add(commit.commandId);
      for (const event of commit.events) {
        if (event.version !== next) throw new RangeError(`event version ${event.version} appended where ${next} was due`);
        next++;
        versions.push(event.version);
        types.push(event.type);
        data.push(JSON.stringify(event.data) ?? 'null');
        times.push(event.time);
        eventCommandIds.push(event.commandId ?? null);
        schemaVersions.push(event.schemaVersion ?? 1);
      }
      commandIds.push(commit.commandId);
      fingerprints.push(commit.fingerprint);
      commandVersions.push(next - 1);
      refusals.push(commit.refusal ? JSON.stringify(commit.refusal) : null);
    }
    if (commits.length === 0) {
      const { head } = await this.info(stream);
      if (head !== expectedHead) throw new StoreConflictError(stream, expectedHead, head);
      return;
    }
    const head = next - 1;
    const statement = expectedHead === 0 ? this.#sql.appendNew : this.#sql.append;
    const values = [
      stream,
      expectedHead,
      head,
      commandIds,
      fingerprints,
      commandVersions,
      versions,
      types,
      data,
      times,
      eventCommandIds,
      schemaVersions,
      this.notifyChannel,
      JSON.stringify({ stream, head }),
      refusals,
    ];
    for (let attempt = 1; ; attempt++) {
      let appended: boolean;
      try {
        const [row] = await this.#query<{ appended: boolean }>(statement, values);
        appended = row?.appended === true;
      } catch (error) {
        // A command id another hub appended since ours looked for it (the hub checks `findCommands`
        // first): a race like a head conflict. The hub catches up, decides again, and then finds
        // the command as a duplicate.
        if (error instanceof DatabaseError && error.code === '23505' && error.constraint === 'commands_pkey') {
          const taken = commandIds.find((id) => error.detail?.includes(`(${id})`) === true);
          throw new StoreConflictError(stream, expectedHead, (await this.info(stream)).head, taken ?? '(unknown)');
        }
        throw error;
      }
      if (appended) return;
      const actual = (await this.info(stream)).head;
      // Heads only grow, so a failed check normally reads a newer head. Reading the expected one
      // means the row appeared after the statement's snapshot was taken: try again.
      if (actual !== expectedHead || attempt >= APPEND_ATTEMPTS) throw new StoreConflictError(stream, expectedHead, actual);
    }
  }

  /**
   * Lease holders per hub (the `hubs` and `presence` tables) and when each was last seen leaving one
   * (`holders`), on the database's clock: the hubs' `now` is not used, their clocks may disagree.
   */
  readonly presence: PresenceRegistry = {
    enter: async (hubId, holder) => {
      await this.#query(this.#sql.presenceEnter, [hubId, holder]);
    },
    leave: async (hubId, holder) => {
      await this.#query(this.#sql.presenceLeave, [hubId, holder]);
    },
    heartbeat: async (hubId) => {
      await this.#query(this.#sql.presenceHeartbeat, [hubId]);
    },
    isPresentElsewhere: async (hubId, holder, ttlMs) => {
      const [row] = await this.#query<{ present: boolean }>(this.#sql.presenceElsewhere, [hubId, holder, ttlMs]);
      return row?.present === true;
    },
    sinceLastSeen: async (hubId, holder, ttlMs) => {
      const [row] = await this.#query<{ ago: number | null }>(this.#sql.presenceSinceLastSeen, [hubId, holder, ttlMs]);
      // A departure committed while this statement started can be a hair in its future.
      return row?.ago == null ? undefined : Math.max(0, row.ago);
    },
    forget: async (hubId) => {
      await this.#query(this.#sql.presenceForget, [hubId]);
    },
  };

  async read(stream: string, from: number, limit: number): Promise<StoredEvent[]> {
    if (limit <= 0) return [];
    const rows = await this.#query<EventRow>(this.#sql.read, [stream, from, limit]);
    return rows.map(toStoredEvent);
  }

  async findCommands(commandIds: readonly string[]): Promise<Map<string, CommandRecord>> {
    const found = new Map<string, CommandRecord>();
    if (commandIds.length === 0) return found;
    const rows = await this.#query<{ command_id: string; stream: string; fingerprint: string; version: string; refusal: StoredRefusal | null }>(
      this.#sql.findCommands,
      [[...commandIds]],
    );
    for (const row of rows) {
      const record: CommandRecord = { commandId: row.command_id, stream: row.stream, fingerprint: row.fingerprint, version: Number(row.version) };
      if (row.refusal !== null) record.refusal = row.refusal;
      found.set(row.command_id, record);
    }
    return found;
  }

  async loadSnapshot(stream: string): Promise<Snapshot | undefined> {
    const [row] = await this.#query<{ version: string; state: unknown }>(this.#sql.loadSnapshot, [stream]);
    return row ? { stream, version: Number(row.version), state: row.state } : undefined;
  }

  /** Keeps the newest snapshot of each stream: an older one saved later (by a slower hub) is ignored. */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    await this.#query(this.#sql.saveSnapshot, [snapshot.stream, snapshot.version, snapshotJson(snapshot)]);
  }

  /** Deletes events below `before`, never past the latest snapshot. Command records are kept. */
  async compact(stream: string, before: number): Promise<void> {
    await this.#query(this.#sql.compact, [stream, before]);
  }

  async streams(): Promise<string[]> {
    const rows = await this.#query<{ stream: string }>(this.#sql.streams, []);
    return rows.map((row) => row.stream);
  }

  /**
   * Deletes command records older than `olderThan`: from then on a retry of such a command is
   * applied again. Records are otherwise kept forever (compaction keeps them), so this sets the
   * deduplication horizon. Answers how many were deleted.
   */
  async pruneCommandRecords(olderThan: Date): Promise<number> {
    const rows = await this.#query<{ deleted: string }>(this.#sql.pruneCommands, [olderThan]);
    return Number(rows[0]?.deleted ?? 0);
  }

  /**
   * Reports every head move of every stream, by this process or any other on the same schema.
   * The first watcher opens the LISTEN connection; the last one to leave closes it.
   */
  watch(listener: Listener): () => void {
    if (this.#closed) return () => {};
    this.#listeners.add(listener);
    if (!this.#listener) {
      this.#listenPool ??= this.#options.listenConnectionString === undefined ? this.#pool : this.#openListenPool(this.#options.listenConnectionString);
      this.#listener = new NotifyListener({
        pool: this.#listenPool,
        channel: this.notifyChannel,
        applicationName: `${this.#options.applicationName ?? `lockstep:${this.schema}`}:listen`,
        headsSql: this.#sql.heads.text,
        backoff: this.#options.listenBackoff ?? POSTGRES_STORE_DEFAULTS.listenBackoff,
        healthCheckMs: this.#options.listenHealthCheckMs ?? POSTGRES_STORE_DEFAULTS.listenHealthCheckMs,
        onHead: (stream, head) => {
          for (const each of [...this.#listeners]) each(stream, head);
        },
        onError: this.#onError,
      });
      void this.#listener.start();
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0 && this.#listener) {
        const stopping = this.#listener;
        this.#listener = undefined;
        void stopping.stop();
      }
    };
  }

  #openListenPool(connectionString: string): Pool {
    const pool = new Pool({
      connectionString,
      max: 1,
      connectionTimeoutMillis: this.#options.connectionTimeoutMs ?? POSTGRES_STORE_DEFAULTS.connectionTimeoutMs,
      keepAlive: true,
    });
    pool.on('error', this.#onPoolError);
    return pool;
  }

  /** Whether the LISTEN connection is up, once an attempt in progress is over (for health checks and tests). */
  async listening(): Promise<boolean> {
    const listener = this.#listener;
    if (!listener) return false;
    await listener.settled();
    return listener.listening;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    await this.#listener?.stop();
    this.#listener = undefined;
    if (this.#listenPool && this.#listenPool !== this.#pool) await this.#listenPool.end();
    if (this.#ownsPool) await this.#pool.end();
    this.#pool.off('error', this.#onPoolError);
  }
}

function toStoredEvent(row: EventRow): StoredEvent {
  const event: StoredEvent = { version: Number(row.version), type: row.type, data: row.data, time: row.time };
  if (row.command_id !== null) event.commandId = row.command_id;
  if (row.schema_version !== 1) event.schemaVersion = row.schema_version;
  return event;
}

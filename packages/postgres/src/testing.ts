import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, it, onTestFinished } from 'vitest';
import { PostgresEventStore, type PostgresEventStoreOptions } from './postgresEventStore.js';
import { quoteIdentifier } from './schema.js';

/** The environment variable naming the database the tests use: `postgres://user@host:port/db`. */
export const POSTGRES_TEST_URL_VARIABLE = 'LOCKSTEP_PG_URL';

/** What a suite declared with {@link describePostgres} gets. */
export interface PostgresTestDatabase {
  /** The database URL (from `LOCKSTEP_PG_URL`). */
  readonly url: string;
  /** A new schema name, unique to this call; the schema is dropped after the suite. */
  schema(): string;
  /**
   * Opens a store in `options.schema` (default: a new schema), closed when the current test
   * finishes. `onError` defaults to ignoring background trouble, which some tests cause on purpose.
   */
  open(options?: Omit<PostgresEventStoreOptions, 'connectionString' | 'pool'>): Promise<PostgresEventStore>;
  /** Runs one SQL statement on a short-lived connection of its own (to inspect or to break things). */
  sql<Row extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<Row[]>;
}

/**
 * Declares a vitest suite that needs PostgreSQL. With `LOCKSTEP_PG_URL` set, the suite runs and every
 * schema it made is dropped afterwards (each test can use its own, so suites run in parallel). Without
 * it, the suite is skipped with a note saying how to get one — except in CI (`CI` set), where a
 * missing database must not pass unnoticed: the suite then fails.
 */
export function describePostgres(name: string, body: (db: PostgresTestDatabase) => void): void {
  const url = process.env[POSTGRES_TEST_URL_VARIABLE];
  if (!url) {
    if (process.env.CI) {
      describe(name, () => {
        it('has a PostgreSQL to test against', () => {
          throw new Error(`${POSTGRES_TEST_URL_VARIABLE} is not set in CI: start a cluster first (eval "$(bash scripts/postgres.sh start)")`);
        });
      });
    } else {
      console.warn(`${name}: skipped — ${POSTGRES_TEST_URL_VARIABLE} is not set (bash scripts/postgres.sh run pnpm test)`);
      describe.skip(`${name} — skipped: ${POSTGRES_TEST_URL_VARIABLE} is not set (run under \`bash scripts/postgres.sh run …\`)`, () => {
        it('needs PostgreSQL', () => {});
      });
    }
    return;
  }
  describe(name, () => {
    const schemas: string[] = [];
    afterAll(async () => {
      if (schemas.length === 0) return;
      await withClient(url, async (client) => {
        for (const schema of schemas) await client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`);
      });
    });
    const db: PostgresTestDatabase = {
      url,
      schema() {
        const schema = `lockstep_test_${randomBytes(6).toString('hex')}`;
        schemas.push(schema);
        return schema;
      },
      async open(options = {}) {
        const store = await PostgresEventStore.open({ onError: () => {}, ...options, schema: options.schema ?? db.schema(), connectionString: url });
        onTestFinished(() => store.close());
        return store;
      },
      sql: (text, values = []) => withClient(url, async (client) => (await client.query(text, values)).rows),
    };
    body(db);
  });
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

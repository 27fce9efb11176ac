import type { PostgresEventStoreOptions } from './postgresEventStore.js';

/** Query parameters of a store URL that are the store's, not the driver's. */
const STORE_PARAMETERS = { schema: 'schema', channel: 'notifyChannel' } as const;

/** True for the URLs {@link postgresStoreOptionsFromUrl} understands (`postgres://…`, `postgresql://…`). */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/**
 * Splits a store URL such as `postgres://hub@db:5432/app?schema=lockstep_prod&sslmode=require` into
 * store options: `schema` and `channel` are the store's (and removed), everything else stays in the
 * connection string for the driver. Only the query string is touched, so credentials and socket
 * paths pass through exactly as written.
 */
export function postgresStoreOptionsFromUrl(url: string): Pick<PostgresEventStoreOptions, 'connectionString' | 'schema' | 'notifyChannel'> {
  if (!isPostgresUrl(url)) throw new RangeError('a PostgreSQL store URL starts with postgres:// or postgresql://');
  const question = url.indexOf('?');
  if (question < 0) return { connectionString: url };
  const query = new URLSearchParams(url.slice(question + 1));
  const options: Pick<PostgresEventStoreOptions, 'schema' | 'notifyChannel'> = {};
  for (const [parameter, option] of Object.entries(STORE_PARAMETERS)) {
    const value = query.get(parameter);
    if (value !== null) options[option] = value;
    query.delete(parameter);
  }
  const rest = query.toString();
  return { connectionString: url.slice(0, question) + (rest ? `?${rest}` : ''), ...options };
}

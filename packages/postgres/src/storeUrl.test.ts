import { describe, expect, it } from 'vitest';
import { isPostgresUrl, postgresStoreOptionsFromUrl } from './storeUrl.js';

describe('postgresStoreOptionsFromUrl', () => {
  it('takes schema and channel out of the query and leaves the rest to the driver', () => {
    expect(postgresStoreOptionsFromUrl('postgres://hub:s%40cret@db:5432/app?schema=lockstep_prod&sslmode=require&channel=hubs')).toEqual({
      connectionString: 'postgres://hub:s%40cret@db:5432/app?sslmode=require',
      schema: 'lockstep_prod',
      notifyChannel: 'hubs',
    });
    expect(postgresStoreOptionsFromUrl('postgresql://localhost/app?schema=a')).toEqual({ connectionString: 'postgresql://localhost/app', schema: 'a' });
    expect(postgresStoreOptionsFromUrl('postgres://%2Fvar%2Frun%2Fpostgresql/app')).toEqual({ connectionString: 'postgres://%2Fvar%2Frun%2Fpostgresql/app' });
  });

  it('knows PostgreSQL URLs from others', () => {
    expect(isPostgresUrl('postgres://x')).toBe(true);
    expect(isPostgresUrl('POSTGRESQL://x')).toBe(true);
    expect(isPostgresUrl('file:./data')).toBe(false);
    expect(() => postgresStoreOptionsFromUrl('mysql://x')).toThrow(RangeError);
  });
});

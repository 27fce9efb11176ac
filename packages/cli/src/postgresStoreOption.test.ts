import { describe, expect, it } from 'vitest';
import { describeStore, parseServeOptions } from './options.js';

describe('--store postgres://…', () => {
  it('takes a PostgreSQL URL as it is, and never shows its password', () => {
    const url = 'postgres://hub:s3cret@db.internal:5432/app?schema=lockstep_prod&sslmode=require';
    const options = parseServeOptions(['--store', url]);
    expect(options.store).toEqual({ kind: 'postgres', url });
    expect(describeStore(options.store)).toBe('postgres://hub:***@db.internal:5432/app?schema=lockstep_prod&sslmode=require');
    expect(describeStore({ kind: 'postgres', url: 'postgresql://localhost/app' })).toBe('postgresql://localhost/app');
  });

  it('refuses a bare scheme', () => {
    expect(() => parseServeOptions(['--store', 'postgres://'])).toThrow(/--store: expected memory or file:DIR or postgres:\/\/…/);
  });
});

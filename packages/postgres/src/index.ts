export { POSTGRES_STORE_DEFAULTS, PostgresEventStore, defaultNotifyChannel, type PostgresEventStoreOptions } from './postgresEventStore.js';
export { CHANNEL_NAME_PATTERN, SCHEMA_NAME_PATTERN, SCHEMA_VERSION } from './schema.js';
export { isPostgresUrl, postgresStoreOptionsFromUrl } from './storeUrl.js';

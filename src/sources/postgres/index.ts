/** The `postgres` job kind: backup with pg_dump and a fingerprint, restore with pg_restore and verification. */
export { backupPostgres, type PostgresBackupOptions } from './backup.js';
export { restorePostgres, type PostgresRestoreOptions } from './restore.js';
export {
  describePgTarget,
  resolvePgConnection,
  type PgConnectionSpec,
  type PgSslMode,
  type PgTarget,
} from './connection.js';
export * from '../database/index.js';
export { postgresQuiesce } from './quiesce.js';

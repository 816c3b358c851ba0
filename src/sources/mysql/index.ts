/** The `mysql` job kind (MySQL and MariaDB): backup with an exactly aligned fingerprint, restore with verification. */
export { backupMysql, type MysqlBackupOptions } from './backup.js';
export { restoreMysql, type MysqlRestoreOptions } from './restore.js';
export type { CommitBlock } from './consistentDump.js';
export {
  describeMysqlTarget,
  resolveMysqlConnection,
  type MysqlConnectionSpec,
  type MysqlSslMode,
  type MysqlTarget,
} from './connection.js';
export * from '../database/index.js';
export { mysqlQuiesce } from './quiesce.js';

import { closeMysql, connectMysql, mysqlError } from './client.js';
import { resolveMysqlConnection, type MysqlConnectionSpec } from './connection.js';

/**
 * Quiesce for a filesystem snapshot of a MySQL/MariaDB data directory:
 * FLUSH TABLES WITH READ LOCK is held on one connection only while the
 * (atomic) snapshot command runs, then released — writes pause for that
 * moment and the snapshot holds flushed, consistent tables.
 */
export function mysqlQuiesce(spec: MysqlConnectionSpec) {
  return async <T>(atSnapshotMoment: () => Promise<T>): Promise<T> => {
    const target = resolveMysqlConnection(spec);
    const conn = await connectMysql(target, undefined, 'quiesce before the snapshot');
    try {
      await conn.query('FLUSH TABLES WITH READ LOCK').catch((err: unknown) => {
        throw mysqlError(err, target, undefined, 'FLUSH TABLES WITH READ LOCK');
      });
      try {
        return await atSnapshotMoment();
      } finally {
        await conn.query('UNLOCK TABLES').catch(() => {});
      }
    } finally {
      await closeMysql(conn);
    }
  };
}

import { closePg, connectPg, pgError } from './client.js';
import { resolvePgConnection, type PgConnectionSpec } from './connection.js';

/**
 * Quiesce for a filesystem snapshot of a PostgreSQL data directory: a
 * CHECKPOINT right before the snapshot keeps crash recovery of the snapshot
 * short (PostgreSQL is crash-consistent on an atomic snapshot anyway).
 */
export function postgresQuiesce(spec: PgConnectionSpec) {
  return async <T>(atSnapshotMoment: () => Promise<T>): Promise<T> => {
    const target = resolvePgConnection(spec);
    const client = await connectPg(target, undefined, 'quiesce before the snapshot');
    try {
      await client.query('CHECKPOINT').catch((err: unknown) => {
        throw pgError(err, target, undefined, 'CHECKPOINT before the snapshot');
      });
      return await atSnapshotMoment();
    } finally {
      await closePg(client);
    }
  };
}

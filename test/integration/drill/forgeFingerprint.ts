/**
 * Crafting a fingerprint mismatch: a copy of a database snapshot whose manifest claims one
 * more row in a table than the dump holds. Everything else (the dump, its SHA-256) is the
 * real backup, so a drill of the copy restores fine and must fail on the fingerprint.
 */
import { createHash } from 'node:crypto';
import type { Deps } from '../../../src/app/deps.js';
import { openConfiguredRepository } from '../../../src/app/repositories.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { loadDatabaseTree } from '../../../src/sources/database/snapshotTree.js';

/** Save the forged snapshot; returns its ID and the table whose row count was changed. */
export async function forgeRowCount(
  config: LifeboatConfig,
  deps: Deps,
  snapshotId: string,
  kind: 'postgres' | 'mysql',
  table: string,
): Promise<{ id: string; expectedRows: number }> {
  const repo = await openConfiguredRepository(config, 'main', deps);
  try {
    const snapshot = await repo.findSnapshot(snapshotId);
    const { manifest } = await loadDatabaseTree(repo, snapshot.tree, kind);
    const db = Object.keys(manifest.fingerprint.databases)[0]!;
    const t = manifest.fingerprint.databases[db]!.tables[table];
    if (!t) throw new Error(`no table ${table} in the fingerprint of ${db}`);
    t.rows += 1;
    const bytes = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    const blob = await repo.saveBlob('data', bytes);
    const root = await repo.loadTree(snapshot.tree);
    const nodes = root.nodes.map((n) =>
      n.name === 'manifest.json'
        ? {
            ...n,
            size: bytes.length,
            content: [blob.id],
            sha256: createHash('sha256').update(bytes).digest('hex'),
          }
        : n,
    );
    const tree = await repo.saveTree({ nodes });
    const { id: _id, ...record } = snapshot;
    const id = await repo.saveSnapshot({
      ...record,
      tree,
      fingerprint: { ...manifest.fingerprint },
      endedAt: new Date(Date.parse(snapshot.endedAt) + 1000).toISOString(),
    });
    return { id, expectedRows: t.rows };
  } finally {
    await repo.close();
  }
}

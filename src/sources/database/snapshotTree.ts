/**
 * The tree of a database snapshot:
 *
 *   manifest.json            what was dumped, how, and the fingerprint
 *   databases/<name>.dump    pg_dump custom-format archive (postgres)
 *   databases/<name>.sql     mariadb-dump / mysqldump output (mysql)
 *   globals.sql | grants.sql roles and tablespaces / users and grants (optional)
 *
 * Database names may hold any character, so file names are percent-encoded
 * for `%`, `/` and NUL; the manifest keeps the real names.
 */
import { createHash } from 'node:crypto';
import { IntegrityError } from '../../errors.js';
import type { Repo, SnapshotRecord } from '../../repository/api.js';
import type { BlobId, TreeNode } from '../../repository/tree.js';
import type { SavedStream } from './dumpStream.js';
import type { ServerFingerprint } from './fingerprint.js';

export const MANIFEST_FILE = 'manifest.json';
export const DATABASES_DIR = 'databases';

/** One dumped database. */
export interface DumpEntry {
  database: string;
  /** Path inside the snapshot tree, e.g. `databases/shop.dump`. */
  path: string;
  format: 'pg-custom' | 'sql';
  size: number;
  /** SHA-256 of the whole dump: recorded by older versions only (see dumpStream.ts). */
  sha256?: string;
  /** Properties needed to recreate the database (encoding, collation …). */
  properties: Record<string, string>;
}

/** An extra file such as `globals.sql` or `grants.sql`. */
export interface ExtraEntry {
  path: string;
  size: number;
  sha256?: string;
}

export interface DatabaseManifest {
  v: 1;
  kind: 'postgres' | 'mysql';
  /** The dump tool and its version, e.g. `pg_dump (PostgreSQL) 15.20`. */
  dumpTool: string;
  dumps: DumpEntry[];
  globals?: ExtraEntry;
  fingerprint: ServerFingerprint;
}

/** The file name (inside `databases/`) of a database's dump. */
export function dumpFileName(database: string, extension: 'dump' | 'sql'): string {
  const safe = database.replace(
    /[%/\0]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`,
  );
  return `${safe}.${extension}`;
}

export interface BuildTreeInput {
  manifest: DatabaseManifest;
  /** Saved streams by tree path (`databases/x.dump`, `globals.sql`). */
  files: Map<string, SavedStream>;
  /** Modification time recorded on every node, ms since the epoch. */
  now: number;
}

export type SnapshotStats = SnapshotRecord['stats'];

/** Save the manifest and the trees; returns the root tree and the snapshot stats. */
export async function buildDatabaseTree(
  repo: Repo,
  input: BuildTreeInput,
): Promise<{ tree: BlobId; stats: SnapshotStats }> {
  const mtimeNs = (BigInt(Math.trunc(input.now)) * 1_000_000n).toString();
  const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  const stats: SnapshotStats = { files: 0, dirs: 0, bytes: 0, addedBytes: 0, storedBytes: 0, blobs: 0 };
  const fileNode = (name: string, saved: SavedStream): TreeNode => {
    stats.files++;
    stats.bytes += saved.size;
    stats.addedBytes += saved.addedBytes;
    stats.blobs += saved.addedBlobs;
    return {
      name,
      type: 'file',
      mode: 0o600,
      ...owner,
      mtimeNs,
      size: saved.size,
      content: saved.content,
      sha256: saved.sha256,
    };
  };

  const manifestBytes = Buffer.from(JSON.stringify(input.manifest, null, 2) + '\n');
  const manifestBlob = await repo.saveBlob('data', manifestBytes);
  const manifestSaved: SavedStream = {
    content: [manifestBlob.id],
    size: manifestBytes.length,
    sha256: createHash('sha256').update(manifestBytes).digest('hex'),
    addedBytes: manifestBlob.stored ? manifestBlob.length : 0,
    addedBlobs: manifestBlob.stored ? 1 : 0,
  };

  const dbNodes: TreeNode[] = [];
  const rootNodes: TreeNode[] = [fileNode(MANIFEST_FILE, manifestSaved)];
  for (const [path, saved] of input.files) {
    const parts = path.split('/');
    if (parts.length === 2 && parts[0] === DATABASES_DIR && parts[1]) dbNodes.push(fileNode(parts[1], saved));
    else if (parts.length === 1 && parts[0]) rootNodes.push(fileNode(parts[0], saved));
    else throw new Error(`unexpected path in a database snapshot: ${path}`);
  }
  const sortByName = (a: TreeNode, b: TreeNode) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  const subtree = await repo.saveTree({ nodes: dbNodes.sort(sortByName) });
  stats.dirs += 2; // the root and databases/
  rootNodes.push({ name: DATABASES_DIR, type: 'dir', mode: 0o700, ...owner, mtimeNs, subtree });
  const tree = await repo.saveTree({ nodes: rootNodes.sort(sortByName) });
  // The repository does not report compressed sizes to sources; added plaintext is the best upper bound.
  stats.storedBytes = stats.addedBytes;
  return { tree, stats };
}

/** A loaded database snapshot: its manifest and file nodes by path. */
export interface DatabaseTree {
  manifest: DatabaseManifest;
  files: Map<string, TreeNode>;
}

function isManifest(value: unknown): value is DatabaseManifest {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Partial<DatabaseManifest>;
  return (
    m.v === 1 &&
    (m.kind === 'postgres' || m.kind === 'mysql') &&
    Array.isArray(m.dumps) &&
    typeof m.fingerprint === 'object' &&
    m.fingerprint !== null
  );
}

/** Load a database snapshot's tree and manifest; `kind` is the job kind expected. */
export async function loadDatabaseTree(
  repo: Repo,
  treeId: BlobId,
  kind: DatabaseManifest['kind'],
): Promise<DatabaseTree> {
  const root = await repo.loadTree(treeId);
  const files = new Map<string, TreeNode>();
  for (const node of root.nodes) {
    if (node.type === 'file') files.set(node.name, node);
    else if (node.type === 'dir' && node.name === DATABASES_DIR && node.subtree) {
      for (const child of (await repo.loadTree(node.subtree)).nodes) {
        if (child.type === 'file') files.set(`${DATABASES_DIR}/${child.name}`, child);
      }
    }
  }
  const manifestNode = files.get(MANIFEST_FILE);
  if (!manifestNode?.content) {
    throw new IntegrityError(`snapshot tree ${treeId} has no ${MANIFEST_FILE}: it is not a ${kind} snapshot`);
  }
  const chunks: Uint8Array[] = [];
  for (const ref of manifestNode.content) {
    if (typeof ref !== 'string')
      throw new IntegrityError(`${MANIFEST_FILE} of snapshot tree ${treeId} is malformed`);
    chunks.push(await repo.loadBlob(ref));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new IntegrityError(`${MANIFEST_FILE} of snapshot tree ${treeId} is not valid JSON`, { cause: err });
  }
  if (!isManifest(parsed) || parsed.kind !== kind) {
    throw new IntegrityError(
      `${MANIFEST_FILE} of snapshot tree ${treeId} does not describe a ${kind} backup`,
      {
        hint: `Pick a snapshot of a ${kind} job (lifeboat snapshots --job NAME).`,
      },
    );
  }
  for (const dump of parsed.dumps) {
    if (!files.get(dump.path)?.content) {
      throw new IntegrityError(`snapshot tree ${treeId} lacks ${dump.path} listed in its manifest`);
    }
  }
  return { manifest: parsed, files };
}

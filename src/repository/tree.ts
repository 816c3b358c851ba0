/**
 * Trees and snapshots as stored in the repository (see docs/repository-format.md).
 * A tree is one directory: its entries sorted by name. Trees are stored as
 * encrypted `tree` blobs holding JSON, so identical directories dedup.
 */

/** Hex HMAC-SHA256 of the plaintext under the repository's id key. */
export type BlobId = string;

/**
 * One piece of a file's content, in order: a stored data blob, or a run of
 * zero bytes that was recorded and not stored (holes in sparse files, empty
 * blocks of disk images). `{ zero: n }` is restored as a hole where possible.
 */
export type ContentRef = BlobId | { zero: number };

export type NodeType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'chardev' | 'blockdev';

export interface TreeNode {
  /** One path component; never contains `/`, never `.` or `..` (restore rejects such entries). */
  name: string;
  /** The name as raw bytes (base64) when it is not valid UTF-8. */
  nameRaw?: string;
  type: NodeType;
  /** Permission and special bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  user?: string;
  group?: string;
  /** Modification time in nanoseconds since the epoch, as a decimal string (exceeds 2^53). */
  mtimeNs: string;
  /** Logical size for files (including holes). */
  size?: number;
  /** For files: the content, in order. */
  content?: ContentRef[];
  /** For dirs: the tree blob of the directory's entries. */
  subtree?: BlobId;
  /** For symlinks: the link target, verbatim. */
  linkTarget?: string;
  /** For symlinks: the target as raw bytes (base64) when it is not valid UTF-8. */
  linkTargetRaw?: string;
  /** For device nodes: the device number. */
  rdev?: number;
  /**
   * Hardlinks: files with more than one link carry the source's (dev, ino) as
   * `"dev:ino"`; restore links every later occurrence to the first one restored.
   */
  hardlinkKey?: string;
  /** Extended attributes, base64 values, when xattrs are enabled for the job. */
  xattrs?: Record<string, string>;
  /** Content hash of the whole file (hex SHA-256), recorded for drills to verify. */
  sha256?: string;
  /**
   * Instead of sha256, for content with zero runs: the hex SHA-256 of its data
   * chunks alone, in order (the bytes under its `{ zero: n }` runs left out;
   * `content` says where they are). Lets sparse files be hashed without their holes.
   */
  dataSha256?: string;
}

export interface Tree {
  nodes: TreeNode[];
}

/** IDs a node refers to (for check and prune). */
export function referencedBlobs(node: TreeNode): { data: BlobId[]; subtree?: BlobId } {
  const data = (node.content ?? []).filter((c): c is BlobId => typeof c === 'string');
  return node.subtree ? { data, subtree: node.subtree } : { data };
}

/**
 * How a disk image is represented in a snapshot: a tree with one file node
 * whose content is the image's fixed-size blocks in order (zero runs are
 * `{ zero: n }`), plus the image fingerprint recorded in the snapshot.
 */
import { IntegrityError } from '../../errors.js';
import type { Tree, TreeNode } from '../../repository/tree.js';

/** Source fingerprint of an image snapshot (SnapshotRecord.fingerprint). */
export interface ImageFingerprint {
  /** Hex SHA-256 of the whole image, zero blocks included. */
  sha256: string;
  size: number;
  blockSize: number;
  /** Blocks that were all zeros: recorded, not stored. */
  zeroBlocks: number;
  /** Blocks with data: each one is a data blob in the repository (possibly shared with other snapshots). */
  storedBlocks: number;
  /** What was imaged. */
  sourceType: 'blockdev' | 'file';
}

/** Differences between two image fingerprints, empty when they describe the same image. */
export function compareImageFingerprints(expected: ImageFingerprint, actual: ImageFingerprint): string[] {
  const diffs: string[] = [];
  if (expected.size !== actual.size) diffs.push(`size ${expected.size} != ${actual.size}`);
  if (expected.sha256 !== actual.sha256) diffs.push(`sha256 ${expected.sha256} != ${actual.sha256}`);
  return diffs;
}

/** A name for the image node: the device or file name, or `image` when that is not a usable name. */
export function imageNodeName(devicePath: string): string {
  const base = devicePath.split('/').filter(Boolean).at(-1) ?? '';
  return base && base !== '.' && base !== '..' ? base : 'image';
}

/** The image node of an image snapshot's tree; a clear error for any other tree. */
export function findImageNode(
  tree: Tree,
): TreeNode & { size: number; sha256: string; content: NonNullable<TreeNode['content']> } {
  const node = tree.nodes[0];
  if (
    tree.nodes.length !== 1 ||
    !node ||
    node.type !== 'file' ||
    typeof node.size !== 'number' ||
    typeof node.sha256 !== 'string' ||
    !Array.isArray(node.content)
  ) {
    throw new IntegrityError(
      'this snapshot does not hold a disk image (expected one file node with size, sha256 and content)',
      {
        hint: 'Restore file and snapshot jobs with the files restore; image restore is for snapshots of image jobs.',
      },
    );
  }
  return node as TreeNode & { size: number; sha256: string; content: NonNullable<TreeNode['content']> };
}

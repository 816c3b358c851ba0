/**
 * Backup of a files job: walks the configured paths into repository trees.
 *
 * Layout of the root tree: one entry per backed-up path, nested as the path's
 * components. `/srv/www` is stored as `srv` → `www`, so it restores as
 * `<target>/srv/www` and several paths (`/etc`, `/srv/www`) share one root
 * without clashing. The directories on the way (`srv`) carry their real
 * metadata but only the entries leading to backed-up paths. Backing up `/`
 * makes the root tree the root directory itself.
 */
import { lstat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { isErrnoException } from '../../errors.js';
import { systemClock, type Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { Repo } from '../../repository/api.js';
import type { BlobId, TreeNode } from '../../repository/tree.js';
import { loadAccounts } from './accounts.js';
import type { FileCache } from './cache.js';
import { SourcePathError } from './errors.js';
import { createPathFilter } from './pathFilter.js';
import type { BackupHooks, BackupStats, FilesFingerprint, FilesProgress, FilesSpec } from './types.js';
import { uniqueDisplayNames } from './names.js';
import { TreeWalker, compareNodes, physicalPath } from './walk.js';
import { checkXattrTools } from './xattrs.js';

export interface BackupFilesOptions {
  /** The job's incremental cache; saved (atomically) when the run completes, closed in any case. */
  cache?: FileCache;
  onProgress?: (p: FilesProgress) => void;
  signal?: AbortSignal;
  logger: Logger;
  /** Used only to keep files modified in the last seconds out of the cache. */
  clock?: Clock;
  /** Test seams (see BackupHooks). */
  hooks?: BackupHooks;
  /** Files read at once (default 4). */
  fileConcurrency?: number;
  /** saveBlob calls in flight (default 8). */
  blobConcurrency?: number;
}

export interface BackupFilesResult {
  /** Root tree to record in the snapshot. */
  tree: BlobId;
  stats: BackupStats;
  /** Why the snapshot is partial (unreadable entries, files changed while read); redacted. */
  warnings: string[];
  partial: boolean;
  fingerprint: FilesFingerprint;
}

/** Files changed this recently (by the clock) are not cached; see WalkerOptions.cacheCutoffNs. */
const RACY_WINDOW_MS = 2000n;

interface PathTrie {
  children: Map<string, PathTrie>;
  /** A configured path ends here. */
  source: boolean;
}

/** Absolute, normalized, without duplicates or paths inside another configured path. */
export function normalizeSourcePaths(paths: readonly string[]): string[] {
  if (paths.length === 0) {
    throw new SourcePathError('the files job has no paths to back up', {
      hint: 'List at least one absolute path under the job’s paths.',
    });
  }
  const resolved = paths.map((p) => {
    if (!isAbsolute(p)) {
      throw new SourcePathError(`source path ${p} is not absolute`, {
        hint: 'Write every path of a files job as an absolute path, e.g. /srv/www.',
      });
    }
    return resolve(p);
  });
  const sorted = [...new Set(resolved)].sort();
  const kept: string[] = [];
  for (const p of sorted) {
    const inside = kept.some((k) => k === '/' || p.startsWith(`${k}/`));
    if (!inside) kept.push(p);
  }
  return kept;
}

async function checkSourcesExist(paths: readonly string[]): Promise<void> {
  for (const p of paths) {
    try {
      await lstat(p);
    } catch (err) {
      const missing = isErrnoException(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR');
      throw new SourcePathError(
        missing ? `source path ${p} does not exist` : `cannot access source path ${p}: ${String(err)}`,
        {
          hint: missing
            ? 'Check the job’s paths in the configuration (or mount the filesystem) and run the backup again.'
            : 'Run lifeboat as a user that can read the path, or fix its permissions.',
          cause: err,
        },
      );
    }
  }
}

function buildTrie(paths: readonly string[]): PathTrie {
  const root: PathTrie = { children: new Map(), source: false };
  for (const p of paths) {
    let at = root;
    for (const part of p.split('/').filter(Boolean)) {
      let next = at.children.get(part);
      if (!next) {
        next = { children: new Map(), source: false };
        at.children.set(part, next);
      }
      at = next;
    }
    at.source = true;
  }
  return root;
}

/** Back up the paths of a files job into `repo`; returns the root tree to put in a snapshot. */
export async function backupFiles(
  repo: Repo,
  spec: FilesSpec,
  opts: BackupFilesOptions,
): Promise<BackupFilesResult> {
  try {
    return await walkAndSave(repo, spec, opts);
  } finally {
    await opts.cache?.close(); // after a failure: drops this run's unfinished cache file
  }
}

async function walkAndSave(
  repo: Repo,
  spec: FilesSpec,
  opts: BackupFilesOptions,
): Promise<BackupFilesResult> {
  const paths = normalizeSourcePaths(spec.paths);
  await checkSourcesExist(paths.map((p) => physicalPath(spec.readFrom, p)));
  if (spec.xattrs) await checkXattrTools();
  const clock = opts.clock ?? systemClock;
  const walker = new TreeWalker({
    repo,
    filter: createPathFilter(spec.include, spec.exclude),
    accounts: await loadAccounts(),
    oneFileSystem: spec.oneFileSystem,
    xattrs: spec.xattrs,
    logger: opts.logger,
    cache: opts.cache,
    cacheCutoffNs: (BigInt(Math.floor(clock.now())) - RACY_WINDOW_MS) * 1_000_000n,
    signal: opts.signal,
    onProgress: opts.onProgress,
    hooks: opts.hooks,
    fileConcurrency: opts.fileConcurrency,
    blobConcurrency: opts.blobConcurrency,
    readFrom: spec.readFrom,
  });

  // Recursion here is bounded by the number of components of the configured paths, not by the data.
  const level = async (trie: PathTrie, abs: string, rel: string): Promise<TreeNode[]> => {
    const nodes: TreeNode[] = [];
    for (const [name, child] of trie.children) {
      const childAbs = abs === '/' ? `/${name}` : `${abs}/${name}`;
      if (child.source) {
        const node = await walker.backupPath(abs, rel, name);
        if (node) nodes.push(node);
      } else {
        const inner = await level(child, childAbs, rel === '' ? name : `${rel}/${name}`);
        const subtree = await repo.saveTree({ nodes: inner });
        nodes.push(await walker.prefixNode(childAbs, name, subtree));
      }
    }
    return nodes.sort(compareNodes);
  };

  let rootNodes: TreeNode[];
  if (paths[0] === '/') {
    rootNodes = (await walker.backupRoot()).sort(compareNodes);
    uniqueDisplayNames(rootNodes);
  } else {
    rootNodes = await level(buildTrie(paths), '/', '');
  }
  const tree = await repo.saveTree({ nodes: rootNodes });
  walker.finalProgress();
  if (opts.cache) await opts.cache.save();
  const { stats, warnings } = walker;
  return {
    tree,
    stats,
    warnings,
    partial: warnings.length > 0,
    fingerprint: { files: stats.files, dirs: stats.dirs, symlinks: stats.symlinks, bytes: stats.bytes },
  };
}

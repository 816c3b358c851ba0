/**
 * Include/exclude rules with gitignore semantics (the `ignore` package),
 * matched against the path as it appears in the snapshot: the absolute source
 * path without its leading `/` (e.g. `srv/www/cache/x`). So `*.log` and
 * `node_modules/` match at any depth, and `/srv/www/cache` is anchored to the
 * filesystem root. Names are case-sensitive, as on Linux.
 */
import ignore, { type Ignore } from 'ignore';

export interface PathFilter {
  /** True when an exclude rule matches the path (or one of its parent directories). */
  excluded(path: string, isDir: boolean): boolean;
  /** True when there are no include rules, or an include rule matches the path or a parent. */
  included(path: string, isDir: boolean): boolean;
  /** True when include rules restrict what is taken. */
  readonly hasIncludes: boolean;
}

function matcher(patterns: readonly string[]): Ignore | undefined {
  const cleaned = patterns.map((p) => p.trim()).filter((p) => p !== '' && !p.startsWith('#'));
  return cleaned.length > 0 ? ignore({ ignorecase: false }).add(cleaned) : undefined;
}

function matches(m: Ignore, path: string, isDir: boolean): boolean {
  const rel = path.replace(/^\/+/, '');
  if (rel === '') return false;
  return m.ignores(isDir ? `${rel}/` : rel);
}

/** Build a filter from include and exclude patterns. */
export function createPathFilter(include: readonly string[], exclude: readonly string[]): PathFilter {
  const inc = matcher(include);
  const exc = matcher(exclude);
  return {
    hasIncludes: inc !== undefined,
    excluded: (path, isDir) => (exc ? matches(exc, path, isDir) : false),
    included: (path, isDir) => (inc ? matches(inc, path, isDir) : true),
  };
}

/**
 * A problem (or a warning) found in a configuration, located by its path in the document.
 * load.ts turns findings into ConfigIssues with line and column.
 */
export type PathSegment = string | number;

export interface Finding {
  path: PathSegment[];
  message: string;
  hint?: string;
  /** Point at the key itself (unknown keys) rather than its value. */
  at?: 'key' | 'value';
}

/** Render a path for people: `jobs.web.paths[0]`; names with dots are quoted. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/**
 * Snapshot names: `lifeboat-<job>-<UTC timestamp>` (e.g.
 * `lifeboat-data-20250301T120000.000Z`), with `.kept` appended once the
 * snapshot became a local restore point. The prefix makes leftovers of a
 * crashed run recognisable; the suffix keeps restore points from being
 * mistaken for leftovers. Valid as btrfs, LVM and ZFS names.
 */
const PREFIX = 'lifeboat-';
export const KEPT_SUFFIX = '.kept';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The name of a new snapshot of `job` taken at `nowMs`. */
export function snapshotName(job: string, nowMs: number): string {
  const stamp = new Date(nowMs).toISOString().replace(/[-:]/g, '');
  return `${PREFIX}${job}-${stamp}`;
}

/** The name a snapshot gets when it is kept as a local restore point. */
export function keptName(name: string): string {
  return name.endsWith(KEPT_SUFFIX) ? name : `${name}${KEPT_SUFFIX}`;
}

export interface ParsedSnapshotName {
  createdAt: number;
  kept: boolean;
}

/** Parse a name made by snapshotName for exactly this job; undefined for anything else. */
export function parseSnapshotName(name: string, job: string): ParsedSnapshotName | undefined {
  const m = new RegExp(
    `^${escapeRegExp(PREFIX + job)}-(\\d{4})(\\d{2})(\\d{2})T(\\d{2})(\\d{2})(\\d{2})\\.(\\d{3})Z(${escapeRegExp(KEPT_SUFFIX)})?$`,
  ).exec(name);
  if (!m) return undefined;
  const createdAt = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
  if (Number.isNaN(createdAt)) return undefined;
  return { createdAt, kept: m[8] !== undefined };
}

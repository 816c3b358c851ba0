/**
 * Who runs a scratch database server. PostgreSQL refuses to run as root and MariaDB
 * should not, so when lifeboat runs as root the server runs as an unprivileged system
 * account (`postgres` / `mysql` when they exist, else `nobody`), which must own the
 * server's directory and be able to reach it.
 */
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { userInfo } from 'node:os';
import { OperationError } from '../errors.js';
import { run, runChecked } from '../platform/exec.js';

export interface ServerAccount {
  name: string;
  /** Set when the server must switch to this account (lifeboat runs as root). */
  uid?: number;
  gid?: number;
}

async function idOf(name: string, flag: '-u' | '-g'): Promise<number | undefined> {
  const r = await run(['id', flag, name], { timeoutMs: 10_000 }).catch(() => undefined);
  const n = r?.code === 0 ? Number(r.stdout.trim()) : NaN;
  return Number.isInteger(n) ? n : undefined;
}

const known = new Map<string, Promise<ServerAccount>>();

/** The account a server runs as: lifeboat's own, or (as root) the first existing of `preferred`, else nobody. */
export function serverAccount(preferred: readonly string[]): Promise<ServerAccount> {
  // Accounts do not change while lifeboat runs; looking them up costs two processes each.
  const key = preferred.join(',');
  let found = known.get(key);
  if (!found) {
    found = lookUpAccount(preferred);
    found.catch(() => known.delete(key));
    known.set(key, found);
  }
  return found;
}

async function lookUpAccount(preferred: readonly string[]): Promise<ServerAccount> {
  if (process.getuid?.() !== 0) {
    let name = String(process.getuid?.() ?? '');
    try {
      name = userInfo().username;
    } catch {
      // No passwd entry (containers): the numeric uid names it.
    }
    return { name };
  }
  for (const name of [...preferred, 'nobody']) {
    const uid = await idOf(name, '-u');
    const gid = uid === undefined ? undefined : await idOf(name, '-g');
    if (uid !== undefined && gid !== undefined && uid !== 0) return { name, uid, gid };
  }
  throw new OperationError(
    'E_SCRATCH_ACCOUNT',
    'no unprivileged account to run a scratch database server as',
    {
      hint: `Create a system user (e.g. ${preferred[0] ?? 'postgres'}) or run lifeboat as a non-root user.`,
    },
  );
}

/** Give `path` (recursively) to the account when the server switches accounts. */
export async function chownForServer(path: string, account: ServerAccount): Promise<void> {
  if (account.uid === undefined || account.gid === undefined) return;
  await runChecked(['chown', '-R', `${account.uid}:${account.gid}`, path], { timeoutMs: 120_000 });
}

/** True when the account may walk down to `dir` (x permission on every ancestor). */
export async function reachableBy(dir: string, account: ServerAccount): Promise<boolean> {
  if (account.uid === undefined) return true;
  let current = dir;
  for (;;) {
    const st = await stat(current).catch(() => undefined);
    if (!st) return false;
    const mode = st.mode;
    const ok =
      st.uid === account.uid
        ? (mode & 0o100) !== 0
        : st.gid === account.gid
          ? (mode & 0o010) !== 0
          : (mode & 0o001) !== 0;
    if (!ok) return false;
    const parent = dirname(current);
    if (parent === current) return true;
    current = parent;
  }
}

/** Process options that make a spawned program run as the account. */
export function asAccount(account: ServerAccount): { uid?: number; gid?: number } {
  return account.uid === undefined ? {} : { uid: account.uid, gid: account.gid! };
}

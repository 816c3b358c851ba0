/**
 * User and group names, read once from /etc/passwd and /etc/group (no
 * per-file lookups, no external commands). Names make a restore onto a new
 * host map owners by name, as tar does.
 */
import { readFile } from 'node:fs/promises';

export interface Accounts {
  userName(uid: number): string | undefined;
  groupName(gid: number): string | undefined;
  uidOf(name: string): number | undefined;
  gidOf(name: string): number | undefined;
}

/** Parse `name:x:id:...` lines into both directions; malformed lines are ignored. */
export function parseIdFile(text: string): { byId: Map<number, string>; byName: Map<string, number> } {
  const byId = new Map<number, string>();
  const byName = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const [name, , idText] = line.split(':');
    if (!name || idText === undefined || !/^\d+$/.test(idText)) continue;
    const id = Number(idText);
    // The first entry wins, as with getpwuid/getpwnam on a files database.
    if (!byId.has(id)) byId.set(id, name);
    if (!byName.has(name)) byName.set(name, id);
  }
  return { byId, byName };
}

async function readOptional(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}

/** Load the account databases; a missing file just means no names. */
export async function loadAccounts(passwd = '/etc/passwd', group = '/etc/group'): Promise<Accounts> {
  const users = parseIdFile(await readOptional(passwd));
  const groups = parseIdFile(await readOptional(group));
  return {
    userName: (uid) => users.byId.get(uid),
    groupName: (gid) => groups.byId.get(gid),
    uidOf: (name) => users.byName.get(name),
    gidOf: (name) => groups.byName.get(name),
  };
}

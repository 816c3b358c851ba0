/**
 * Users, roles and grants as a replayable script (`grants.sql`): CREATE USER
 * IF NOT EXISTS from SHOW CREATE USER (password hashes included, so accounts
 * work again after a restore), CREATE ROLE IF NOT EXISTS, then SHOW GRANTS.
 * Authentication clauses are removed from GRANT lines (MariaDB prints them)
 * so that replaying a grant never resets the password of an existing account.
 */
import { rows, type MysqlConnection } from './client.js';

/** Accounts the server manages itself. */
const SYSTEM_ACCOUNTS = new Set(['mariadb.sys', 'mysql.sys', 'mysql.session', 'mysql.infoschema', 'PUBLIC']);

interface Account {
  user: string;
  host: string;
  role: boolean;
}

async function listAccounts(conn: MysqlConnection): Promise<Account[]> {
  let list: Array<{ user: string; host: string; role: number | string }>;
  try {
    list = await rows(
      conn,
      `SELECT User AS user, Host AS host, IF(is_role = 'Y', 1, 0) AS role FROM mysql.user ORDER BY User, Host`,
    );
  } catch {
    // MySQL has no is_role column (its roles are locked accounts).
    list = await rows(
      conn,
      `SELECT User AS user, Host AS host, 0 AS role FROM mysql.user ORDER BY User, Host`,
    );
  }
  return list
    .map((a) => ({ user: String(a.user), host: String(a.host), role: Number(a.role) === 1 }))
    .filter((a) => a.user !== '' && !SYSTEM_ACCOUNTS.has(a.user));
}

/** A GRANT line without its IDENTIFIED … clause. */
export function stripAuthentication(grant: string): string {
  return grant.replace(/\s+IDENTIFIED\s+(?:BY\s+PASSWORD\s+'[^']*'|VIA\s+.*?)(?=\s+WITH\s+|$)/i, '');
}

/** `CREATE USER 'a'@'h' …` → `CREATE USER IF NOT EXISTS 'a'@'h' …` (idempotent replay). */
export function idempotentCreateUser(statement: string): string {
  return statement.replace(/^CREATE\s+USER\s+(?!IF\s+NOT\s+EXISTS)/i, 'CREATE USER IF NOT EXISTS ');
}

const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

/** The grants script of the server, and warnings for accounts that could not be read. */
export async function dumpUsersAndGrants(
  conn: MysqlConnection,
): Promise<{ sql: string; accounts: number; warnings: string[] }> {
  const out: string[] = ['-- lifeboat: users, roles and grants', ''];
  const grants: string[] = [];
  const warnings: string[] = [];
  const accounts = await listAccounts(conn);
  for (const a of accounts) {
    const account = a.role ? `\`${a.user.replace(/`/g, '``')}\`` : `${q(a.user)}@${q(a.host)}`;
    try {
      if (a.role) out.push(`CREATE ROLE IF NOT EXISTS ${account};`);
      else {
        const [created] = (await conn.query({
          sql: `SHOW CREATE USER ${account}`,
          rowsAsArray: true,
        })) as unknown as [unknown[][]];
        const statement = String(created[0]?.[0] ?? '');
        if (statement) out.push(`${idempotentCreateUser(statement)};`);
      }
      const [shown] = (await conn.query({
        sql: `SHOW GRANTS FOR ${account}`,
        rowsAsArray: true,
      })) as unknown as [unknown[][]];
      for (const row of shown) grants.push(`${stripAuthentication(String(row[0]))};`);
    } catch (err) {
      warnings.push(`account ${a.user}@${a.host}: ${(err as Error).message}`);
    }
  }
  out.push('', ...grants, '');
  return { sql: out.join('\n'), accounts: accounts.length, warnings };
}

/**
 * MySQL hides tables a user has no privilege on: SHOW TABLES, information_schema
 * and mariadb-dump simply do not see them, so a backup user with table-level
 * grants only would produce a "complete" dump that silently lacks tables. The
 * backup therefore requires SELECT on the database as a whole (global or
 * schema-level grant, wildcards included).
 */
import { AccessDeniedError } from '../../errors.js';
import { rows, type MysqlConnection } from './client.js';
import { describeMysqlTarget, quoteMysqlIdent, type MysqlTarget } from './connection.js';

/** Throw AccessDeniedError unless the current user can SELECT every table of `database`. */
export async function requireDatabaseWideSelect(
  conn: MysqlConnection,
  target: MysqlTarget,
  database: string,
): Promise<void> {
  const [role] = await rows<{ r: string | null }>(conn, 'SELECT CURRENT_ROLE() AS r').catch(() => [
    { r: null },
  ]);
  // Privileges that come through a role are not listed per user in information_schema; trust the role.
  if (role?.r) return;
  const grantee = `CONCAT("'", SUBSTRING_INDEX(CURRENT_USER(), '@', 1), "'@'", SUBSTRING_INDEX(CURRENT_USER(), '@', -1), "'")`;
  const [r] = await rows<{ n: string | number }>(
    conn,
    `SELECT (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ${grantee} AND PRIVILEGE_TYPE = 'SELECT')
          + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES
              WHERE GRANTEE = ${grantee} AND PRIVILEGE_TYPE = 'SELECT' AND ? LIKE TABLE_SCHEMA) AS n`,
    [database],
  );
  if (Number(r?.n ?? 0) > 0) return;
  throw new AccessDeniedError(
    `user ${target.user} has no SELECT privilege on database ${database} as a whole at ${describeMysqlTarget(target, '')}: ` +
      `tables it has no grant on would be silently missing from the dump`,
    {
      hint: `GRANT SELECT, SHOW VIEW, TRIGGER, EVENT, LOCK TABLES ON ${quoteMysqlIdent(database)}.* TO the backup user (and RELOAD ON *.*).`,
    },
  );
}

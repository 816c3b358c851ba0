/**
 * Pristine server data directories, built once per server version and account and then
 * copied for every drill: `initdb` takes about a second and `mariadb-install-db` about
 * three, a copy a tenth of that. Templates live next to the scratch directories in
 * `.lifeboat-templates/`; they hold no data, only an empty server, and are rebuilt when
 * missing. A template is published by renaming a finished build into place, so a drill
 * never copies a half-built one.
 */
import { randomBytes } from 'node:crypto';
import { access, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked } from '../platform/exec.js';
import { chownForServer, type ServerAccount } from './serverAccount.js';

export interface TemplateOptions {
  /** Directory holding `.lifeboat-templates/` (reachable by the account). */
  parent: string;
  /** Identifies what the template was built with (engine, version, account). */
  key: string;
  account: ServerAccount;
  /** Build an empty server data directory at `dataDir` (which does not exist yet; its parent does). */
  build: (dataDir: string) => Promise<void>;
}

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

/**
 * True when only lifeboat's user can change `dir`: a real directory (no symlink) it owns,
 * writable by nobody else. In a shared parent such as /tmp another user could otherwise
 * plant a template whose configuration a drill server would run with.
 */
async function trusted(dir: string): Promise<boolean> {
  const st = await lstat(dir).catch(() => undefined);
  return Boolean(st?.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0);
}

/**
 * Put an empty server data directory at `target` (created here): a copy of the cached
 * template, built first when missing. Without a trustworthy cache directory the data
 * directory is built in place instead.
 */
export async function copyTemplateTo(opts: TemplateOptions, target: string): Promise<{ built: boolean }> {
  const root = join(opts.parent, '.lifeboat-templates');
  const finished = join(root, opts.key.replace(/[^A-Za-z0-9._-]/g, '_'));
  await mkdir(root, { recursive: true, mode: 0o711 }).catch(() => undefined);
  if (!(await trusted(root))) {
    await opts.build(target);
    return { built: true };
  }
  let built = false;
  if (!(await exists(join(finished, 'data')))) {
    const build = join(root, `.build-${randomBytes(6).toString('hex')}`);
    await mkdir(build, { mode: 0o700 });
    try {
      await chownForServer(build, opts.account);
      await opts.build(join(build, 'data'));
      await rename(build, finished).catch(async (err: NodeJS.ErrnoException) => {
        // Another drill published the same template meanwhile: use theirs.
        if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      });
      built = true;
    } finally {
      await rm(build, { recursive: true, force: true });
    }
  }
  // -a keeps the account's ownership and modes (the server refuses a data directory it does not own).
  await runChecked(['cp', '-a', '--reflink=auto', join(finished, 'data'), target], { timeoutMs: 120_000 });
  return { built };
}

/** Remove a template that turned out unusable, so the next drill rebuilds it. */
export async function dropTemplate(parent: string, key: string): Promise<void> {
  await rm(join(parent, '.lifeboat-templates', key.replace(/[^A-Za-z0-9._-]/g, '_')), {
    recursive: true,
    force: true,
  });
}

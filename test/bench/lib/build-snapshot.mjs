// A private copy of the built CLI for one benchmark run, so that a rebuild or
// `npm install` by someone else during a long run cannot change the program
// being measured half way. Used by files-vs-restic.mjs and s3-vs-restic.mjs.
import { cpSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/**
 * Copy `dist` (a `tsc -p tsconfig.build.json` output), bin/, package.json and
 * node_modules of `repoRoot` to `<work>/lifeboat-build`; returns the path of
 * the copied `bin/lifeboat`. Exits with a message when `dist` has no CLI.
 */
export async function snapshotBuild({ dist, repoRoot, work }) {
  const from = resolve(dist);
  if (!existsSync(join(from, 'cli/main.js'))) {
    console.error(`${from}/cli/main.js not found: run \`npm run build\` first (or pass --dist).`);
    process.exit(2);
  }
  if (!existsSync(join(repoRoot, 'node_modules'))) {
    console.error(`${repoRoot}/node_modules not found: run \`npm ci\` first.`);
    process.exit(2);
  }
  const at = join(work, 'lifeboat-build');
  await rm(at, { recursive: true, force: true });
  cpSync(from, join(at, 'dist'), { recursive: true });
  cpSync(join(repoRoot, 'bin'), join(at, 'bin'), { recursive: true });
  cpSync(join(repoRoot, 'package.json'), join(at, 'package.json'));
  // Hard links are quick and keep the old files when npm replaces them.
  try {
    execFileSync('cp', ['-al', join(repoRoot, 'node_modules'), join(at, 'node_modules')], {
      stdio: 'ignore',
    });
  } catch {
    await rm(join(at, 'node_modules'), { recursive: true, force: true });
    cpSync(join(repoRoot, 'node_modules'), join(at, 'node_modules'), {
      recursive: true,
      verbatimSymlinks: true,
    });
  }
  return join(at, 'bin/lifeboat');
}

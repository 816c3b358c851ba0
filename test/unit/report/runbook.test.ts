import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildRunbook, recoveryOrder, shellQuote } from '../../../src/report/index.js';
import { D, fixture, MIN, NOW, point, repo } from './fixture.js';
import { runbookTargets } from './runbookFixture.js';

describe('recoveryOrder', () => {
  const j = (job: string, ...dependsOn: string[]) => ({ job, dependsOn });

  it.each([
    ['no dependencies: configuration order', [j('a'), j('b'), j('c')], ['a', 'b', 'c']],
    ['dependencies first', [j('web', 'db'), j('db'), j('cache')], ['db', 'web', 'cache']],
    ['chains', [j('app', 'api'), j('api', 'db'), j('db')], ['db', 'api', 'app']],
    ['diamonds, each job once', [j('d', 'b', 'c'), j('b', 'a'), j('c', 'a'), j('a')], ['a', 'b', 'c', 'd']],
    ['a dependency on an unknown job is ignored', [j('a', 'gone'), j('b')], ['a', 'b']],
  ])('%s', (_name, jobs, order) => {
    expect(recoveryOrder(jobs)).toEqual({ order, cycle: [] });
  });

  it('lists jobs in a circle last (the configuration refuses circles; this is a safety net)', () => {
    expect(recoveryOrder([j('a', 'b'), j('b', 'a'), j('c')])).toEqual({
      order: ['c', 'a', 'b'],
      cycle: ['a', 'b'],
    });
  });
});

describe('shellQuote', () => {
  const exec = promisify(execFile);
  it.each([
    '/etc/lifeboat/lifeboat.yaml',
    'web',
    'env:RESTORE_DSN',
    'a b',
    "it's",
    '$(rm -rf /)',
    '`x`',
    'a"b',
    '',
  ])('%j survives a POSIX shell unchanged', async (word) => {
    const { stdout } = await exec('sh', ['-c', `printf %s ${shellQuote(word)}`]);
    expect(stdout).toBe(word);
  });

  it('leaves safe words bare', () => {
    expect(shellQuote('/srv/www')).toBe('/srv/www');
    expect(shellQuote('a b')).toBe("'a b'");
  });
});

describe('buildRunbook', () => {
  it('orders jobs, locates restore points and times restores from drills', () => {
    const { evidence, targets } = fixture();
    const rb = buildRunbook(evidence, runbookTargets(targets), NOW);
    expect(rb.jobs.map((x) => [x.step, x.job])).toEqual([
      [1, 'db'],
      [2, 'web'],
      [3, 'archive'],
    ]);
    const db = rb.jobs[0]!;
    expect(db.expectedRestoreMs).toBe(7 * MIN); // median of 6, 7, 6.5, 8, 14 minutes
    expect(db.worstRestoreMs).toBe(14 * MIN);
    expect(db.lastDrill).toMatchObject({ verdict: 'breach', measuredMs: 14 * MIN });
    expect(db.notes).toContain('the last drill did not pass (breach): expect trouble and allow extra time');
    expect(db.commands.map((c) => c.command)).toContain(
      "lifeboat --config '/etc/lifeboat/life boat.yaml' restore db --into env:RESTORE_DSN --create --globals",
    );
    const web = rb.jobs[1]!;
    expect(web.locations.map((l) => [l.repository, l.offsite, l.reachable, l.newest?.ageMs])).toEqual([
      ['local', false, true, 4 * 3_600_000],
      ['offsite', true, true, 4 * 3_600_000],
    ]);
    expect(web.restoreFrom).toBe('local');
    const archive = rb.jobs[2]!;
    expect(archive.restoreFrom).toBeNull();
    expect(archive.locations[0]).toMatchObject({
      reachable: false,
      error: 'no repository at file:///mnt/vault/lifeboat',
    });
    expect(archive.commands.map((c) => c.command)).toContain(
      "lifeboat --config '/etc/lifeboat/life boat.yaml' restore archive --target /dev/vdb --to-device",
    );
    expect(rb.warnings).toEqual([
      'repository vault could not be opened: no repository at file:///mnt/vault/lifeboat',
    ]);
  });

  it('restores from the offsite repository when the first cannot be opened', () => {
    const { targets } = fixture();
    const evidence = {
      repositories: [
        repo('local', { opened: false, error: { code: 'E_REPO_MISSING', message: 'gone' } }),
        repo('offsite', { offsite: true }),
      ],
      restorePoints: [point('web', 'offsite', NOW - D)],
      runs: [],
    };
    const rb = buildRunbook(evidence, runbookTargets(targets), NOW);
    const web = rb.jobs.find((x) => x.job === 'web')!;
    expect(web.restoreFrom).toBe('offsite');
    expect(web.commands[2]!.command).toBe(
      "lifeboat --config '/etc/lifeboat/life boat.yaml' restore web --repository offsite --target /var/lib/lifeboat/scratch/restore/web",
    );
    expect(web.expectedRestoreMs).toBeNull();
    expect(web.notes).toContain('no drill has timed a restore: the restore time is unknown');
  });
});

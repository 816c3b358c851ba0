import { describe, expect, it } from 'vitest';
import { cronFor, RULES } from '../../../src/config/rules.js';
import { BASE, parse, problemLines } from './helpers.js';

/** BASE with extra text appended under the given top-level section line. */
function withLines(text: string, after: string, lines: string): string {
  const at = text.indexOf(after);
  if (at < 0) throw new Error(`"${after}" not in text`);
  return text.slice(0, at + after.length) + '\n' + lines + text.slice(at + after.length);
}

const TWO_REPOS = withLines(
  BASE,
  '    password: env:LIFEBOAT_PASSWORD',
  '  remote:\n    url: s3://acme-backups/web\n    password: env:REMOTE_PASSWORD\n    offsite: true',
);

describe('policyExists', () => {
  it('fails on an unknown policy, with did-you-mean', () => {
    expect(problemLines(BASE + '    policy: standrad\n')).toEqual([
      '13:13 jobs.web.policy: unknown policy `standrad` — did you mean `standard`?',
    ]);
  });
  it('passes for a defined policy', () => {
    expect(parse(BASE + '    policy: standard\n').config.jobs.web!.policy).toBe('standard');
  });
  it('a job without policy needs one when there are several', () => {
    const text = withLines(BASE, '    rpo: 1h', '  other:\n    rpo: 1d');
    expect(problemLines(text)).toEqual([
      '11:3 jobs.web.policy: job `web` names no policy — add policy: with one of `standard`, `other`',
    ]);
  });
});

describe('repositoriesExist', () => {
  it('fails on an unknown repository, with did-you-mean, and on a repeat', () => {
    expect(problemLines(BASE + '    repositories: [locl, local, local]\n')).toEqual([
      '13:20 jobs.web.repositories[0]: unknown repository `locl` — did you mean `local`?',
      '13:33 jobs.web.repositories[2]: repository `local` is listed twice — a repository holds one copy however often it is listed; remove the repeat',
    ]);
  });
  it('passes for defined repositories', () => {
    expect(parse(TWO_REPOS + '    repositories: [remote, local]\n').config.jobs.web!.repositories).toEqual([
      'remote',
      'local',
    ]);
  });
});

describe('dependenciesValid', () => {
  const jobs = (a: string, b: string) =>
    BASE +
    `    dependsOn: [${a}]\n  db:\n    kind: postgres\n    schedule: '0 * * * *'\n    dependsOn: [${b}]\n`;
  it('fails on an unknown job, on itself, and on a circle', () => {
    expect(problemLines(jobs('dbb', 'db'))).toEqual([
      '13:17 jobs.web.dependsOn[0]: unknown job `dbb` — did you mean `db`?',
      '17:17 jobs.db.dependsOn[0]: job `db` depends on itself — remove it from its own dependsOn',
    ]);
    expect(problemLines(jobs('db', 'web'))).toEqual([
      '17:17 jobs.db.dependsOn[0]: jobs depend on each other in a circle: db → web → db — a restore order needs a job to start with; remove one of these dependsOn entries',
    ]);
  });
  it('finds longer circles once', () => {
    const text =
      BASE +
      '    dependsOn: [b]\n' +
      "  b: { kind: files, paths: [/b], schedule: '0 * * * *', dependsOn: [c] }\n" +
      "  c: { kind: files, paths: [/c], schedule: '0 * * * *', dependsOn: [web] }\n";
    expect(problemLines(text)).toEqual([
      '14:69 jobs.b.dependsOn[0]: jobs depend on each other in a circle: b → c → web → b — a restore order needs a job to start with; remove one of these dependsOn entries',
    ]);
  });
  it('passes for an order without circles', () => {
    expect(parse(jobs('db', '')).config.jobs.web!.dependsOn).toEqual(['db']);
  });
});

describe('scheduleMeetsRpo', () => {
  it('fails when the schedule leaves gaps longer than the rpo', () => {
    expect(problemLines(BASE.replace("'0 * * * *'", "'0 */2 * * *'"))).toEqual([
      '12:15 jobs.web.schedule: "0 */2 * * *" (UTC) leaves up to 2h between runs (2025-01-01 00:00Z → 2025-01-01 02:00Z), ' +
        'so policy `standard`\'s rpo of 1h cannot be met — run it at least every 1h, e.g. schedule: "0 * * * *", or raise the rpo',
    ]);
  });
  it('counts daylight saving time: 02:30 daily in Berlin has a 25 h gap', () => {
    const text = BASE.replace('rpo: 1h', 'rpo: 24h').replace(
      "'0 * * * *'",
      "{ cron: '30 2 * * *', timezone: Europe/Berlin }",
    );
    expect(problemLines(text)[0]).toMatch(
      /leaves up to 1d 1h between runs \(2025-10-26 00:30Z → 2025-10-27 01:30Z\)/,
    );
  });
  it('counts the longest month for a monthly schedule', () => {
    const text = BASE.replace('rpo: 1h', 'rpo: 30d').replace("'0 * * * *'", "'@monthly'");
    expect(problemLines(text)[0]).toContain('"@monthly" (UTC) leaves up to 31d between runs');
    expect(parse(text.replace('rpo: 30d', 'rpo: 31d')).warnings).toEqual([]);
  });
  it('passes when the schedule keeps up', () => {
    expect(parse(BASE.replace("'0 * * * *'", "'*/30 * * * *'")).warnings).toEqual([]);
  });
  it('suggests a schedule for the rpo', () => {
    expect([
      cronFor(90_000),
      cronFor(15 * 60_000),
      cronFor(3_600_000),
      cronFor(5 * 3_600_000),
      cronFor(86_400_000),
    ]).toEqual(['* * * * *', '*/15 * * * *', '0 * * * *', '0 */4 * * *', '0 3 * * *']);
  });
});

describe('evidenceFitsReportWindow', () => {
  it('fails when drills or checks are rarer than the report window', () => {
    const text = withLines(BASE, '    rpo: 1h', '    drill: { every: 60d }\n    check: { every: 45d }');
    expect(problemLines(text)).toEqual([
      '8:21 policies.standard.drill.every: drill.every 60d is longer than defaults.reportWindow 30d: a report could cover ' +
        'a window without any drill and fail for lack of evidence — drills at least every 30d, or widen defaults.reportWindow',
      '9:21 policies.standard.check.every: check.every 45d is longer than defaults.reportWindow 30d: a report could cover ' +
        'a window without any integrity check and fail for lack of evidence — integrity checks at least every 30d, or widen defaults.reportWindow',
    ]);
  });
  it('passes within the window, also a widened one', () => {
    const text = withLines(BASE, '    rpo: 1h', '    drill: { every: 60d }');
    expect(parse('defaults: { reportWindow: 90d }\n' + text).config.policies.standard!.drill!.every).toBe(
      60 * 86_400_000,
    );
    expect(parse(withLines(BASE, '    rpo: 1h', '    drill: { every: 7d }')).warnings).toEqual([]);
  });
});

describe('copiesAvailable', () => {
  it('fails when the job has fewer repositories than copies', () => {
    const text = withLines(BASE, '    rpo: 1h', '    copies: 2');
    expect(problemLines(text)).toEqual([
      '10:3 jobs.web.repositories: policy `standard` wants copies in 2 repositories, but job `web` writes to 1 (`local`) — ' +
        'list at least 2 repositories for the job, or lower copies',
    ]);
  });
  it('fails when none of the job repositories is offsite', () => {
    const text = withLines(TWO_REPOS, '    rpo: 1h', '    offsite: 1') + '    repositories: [local]\n';
    expect(problemLines(text)).toEqual([
      '18:19 jobs.web.repositories: policy `standard` wants 1 offsite copy, but job `web` writes to no offsite repository — ' +
        'add a repository with offsite: true to the job (and mark it offsite only if it really is elsewhere)',
    ]);
  });
  it('passes with enough repositories and an offsite one', () => {
    const text = withLines(TWO_REPOS, '    rpo: 1h', '    copies: 2\n    offsite: 1');
    expect(parse(text).config.jobs.web!.repositories).toEqual(['local', 'remote']);
  });
  it('offsite above copies is refused in the policy itself', () => {
    expect(problemLines(withLines(BASE, '    rpo: 1h', '    offsite: 2'))[0]).toContain(
      'policies.standard.offsite: offsite 2 is more than copies 1',
    );
  });
});

describe('snapshotProviderSection', () => {
  const snap = (lines: string) => BASE + `  vol:\n    kind: snapshot\n    schedule: '0 * * * *'\n${lines}`;
  it('fails when the provider section is missing or belongs to another provider', () => {
    expect(problemLines(snap('    provider: lvm\n    zfs: { dataset: tank/x }\n'))).toEqual([
      '13:3 jobs.vol: provider lvm needs `lvm` — add lvm: { volumeGroup: vg0, logicalVolume: data, snapshotSize: 2G }',
      '17:5 jobs.vol.zfs: `zfs` only applies to provider zfs, but this job uses lvm — remove it, or set provider: zfs',
    ]);
    expect(problemLines(snap('    provider: btrfs\n'))).toEqual([
      '13:3 jobs.vol: provider btrfs needs `source` — add source: /mnt/data (the btrfs subvolume)',
    ]);
  });
  it('passes with the right section', () => {
    expect(parse(snap('    provider: zfs\n    zfs: { dataset: tank/data }\n')).config.jobs.vol).toMatchObject(
      {
        provider: 'zfs',
        zfs: { dataset: 'tank/data' },
        keepLocal: 0,
      },
    );
    expect(
      parse(snap('    provider: lvm\n    lvm: { volumeGroup: vg0, logicalVolume: data, snapshotSize: 2G }\n'))
        .config.jobs.vol,
    ).toMatchObject({
      lvm: { snapshotSize: 2 * 2 ** 30 },
    });
  });
});

describe('uniqueRepositoryUrls', () => {
  it('fails on two names for one URL (trailing slash and // ignored)', () => {
    const text = withLines(
      BASE,
      '    password: env:LIFEBOAT_PASSWORD',
      '  again:\n    url: file:///var//backups/lifeboat/\n    password: env:X',
    );
    expect(problemLines(text)).toEqual([
      '6:10 repositories.again.url: same URL as repository `local` — two names for one repository would count a single copy twice; remove one of them',
    ]);
  });
  it('passes for different URLs', () => {
    expect(Object.keys(parse(TWO_REPOS).config.repositories)).toEqual(['local', 'remote']);
  });
});

describe('s3SectionOnlyForS3', () => {
  it('fails on an s3 section of a file repository', () => {
    const text = withLines(BASE, '    password: env:LIFEBOAT_PASSWORD', '    s3: { region: eu-west-1 }');
    expect(problemLines(text)).toEqual([
      '5:5 repositories.local.s3: `s3` settings only apply to s3:// repositories — remove the s3 section, or change the url to s3://bucket/prefix',
    ]);
  });
  it('passes on an s3 repository', () => {
    const text = withLines(
      TWO_REPOS,
      '    offsite: true',
      '    s3: { region: eu-west-1, forcePathStyle: true }',
    );
    expect(parse(text).config.repositories.remote!.s3).toEqual({ region: 'eu-west-1', forcePathStyle: true });
  });
});

describe('quiesceDatabaseIsDatabaseJob', () => {
  const snap = (db: string) =>
    BASE +
    `  vol:\n    kind: snapshot\n    provider: btrfs\n    source: /mnt/data\n    schedule: '0 * * * *'\n    quiesce: { database: ${db} }\n` +
    `  shop:\n    kind: postgres\n    schedule: '0 * * * *'\n`;
  it('fails on an unknown job or a job that is not a database', () => {
    expect(problemLines(snap('shpo'))).toEqual([
      '18:26 jobs.vol.quiesce.database: unknown job `shpo` — did you mean `shop`?',
    ]);
    expect(problemLines(snap('web'))).toEqual([
      '18:26 jobs.vol.quiesce.database: job `web` is a files job, not a database — name a postgres or mysql job whose server should be quiesced',
    ]);
  });
  it('passes for a database job', () => {
    expect(parse(snap('shop')).config.jobs.vol).toMatchObject({
      quiesce: { database: 'shop', before: [], after: [] },
    });
  });
});

describe('databaseOnlyDrillSettings', () => {
  it('fails on sql assertions and scratch servers for a files job', () => {
    const text =
      BASE +
      '    drill:\n      scratch: existing\n      server: env:DSN\n      assertions:\n        - sql: select 1\n';
    expect(problemLines(text)).toEqual([
      '15:7 jobs.web.drill.server: scratch servers are for database jobs; `web` is a files job — remove scratch/server: file drills always restore into a temporary directory',
      '17:11 jobs.web.drill.assertions[0].sql: sql assertions need a database job; `web` is a files job — use a command assertion, e.g. { command: ["test", "-s", "index.html"] }',
    ]);
  });
  it('passes on a database job', () => {
    const text =
      BASE +
      "  db:\n    kind: mysql\n    schedule: '0 * * * *'\n    drill:\n      assertions:\n        - { sql: select 1, expect: 1 }\n";
    expect(parse(text).config.jobs.db!.drill!.assertions).toEqual([
      { type: 'sql', sql: 'select 1', database: undefined, expect: 1, timeout: 300_000 },
    ]);
  });
});

describe('hasJobs', () => {
  it('warns when there are no jobs, and not otherwise', () => {
    expect(parse(BASE.slice(0, BASE.indexOf('jobs:'))).warnings).toHaveLength(1);
    expect(parse(BASE).warnings).toEqual([]);
  });
});

it('every rule has tests above', () => {
  expect(Object.keys(RULES)).toEqual([
    'policyExists',
    'repositoriesExist',
    'dependenciesValid',
    'scheduleMeetsRpo',
    'evidenceFitsReportWindow',
    'copiesAvailable',
    'snapshotProviderSection',
    'uniqueRepositoryUrls',
    's3SectionOnlyForS3',
    'quiesceDatabaseIsDatabaseJob',
    'databaseOnlyDrillSettings',
    'hasJobs',
  ]);
});

/**
 * Where the storage cannot lock objects — local disk, and the real S3
 * server of the test suite (OpenStack Swift's s3api has no Object Lock) — a
 * policy asking for immutableFor is never silently passed: backups and
 * copies still work but say "immutability unavailable for repository X",
 * status reports the job as breached (exit 4), and check notes it.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backupJobs } from '../../../src/app/backup.js';
import { checkRepositories } from '../../../src/app/check.js';
import { copyRestorePoints } from '../../../src/app/copy.js';
import { openConfiguredRepository } from '../../../src/app/repositories.js';
import { collectStatus } from '../../../src/app/status.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { cli } from '../../helpers/cli.js';
import { s3ServerRunnable, startS3Server, type S3TestServer } from '../../helpers/s3server.js';
import { initRepo, makeSandbox, type Sandbox } from '../copy/copyFixture.js';

const POLICIES = '  immutable: { rpo: 1d, immutableFor: 30d }';

let sb: Sandbox | undefined;
afterEach(async () => {
  await sb?.cleanup();
  sb = undefined;
});

async function backupDetails(config: LifeboatConfig, s: Sandbox, repository: 'a' | 'b') {
  const repo = await openConfiguredRepository(config, repository, s.deps);
  try {
    return (await repo.listJournal()).records.map((r) => ({ kind: r.kind, details: r.details ?? {} }));
  } finally {
    await repo.close();
  }
}

/** What every repository that cannot lock must show. */
async function expectUnavailable(config: LifeboatConfig, s: Sandbox, reason: RegExp) {
  const [backup] = await backupJobs(config, { jobs: ['site'] }, s.deps);
  expect(backup?.outcome).toBe('success'); // the restore point itself is fine
  const warning = s.logs.find((l) => l.level === 'warn' && l.message.includes('immutability unavailable'));
  expect(warning?.message).toMatch(/^immutability unavailable for repository a: /);
  expect(warning?.message).toMatch(reason);
  expect(warning?.message).toContain('policy immutable asks for immutableFor 30d');
  const [record] = await backupDetails(config, s, 'a');
  expect(record!.details.immutability).toMatchObject({ state: 'unavailable' });

  const status = await collectStatus(config, {}, s.deps);
  expect(status.ok).toBe(false);
  expect(status.breached).toEqual(['site']);
  expect(status.jobs[0]!.state).toBe('breached');
  expect(status.jobs[0]!.repositories[0]!.immutability).toMatchObject({
    state: 'unavailable',
    targetState: 'breached',
  });
  expect(status.exitCode).toBe(4);

  const [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'none' } }, s.deps);
  expect(check!.report?.ok).toBe(true); // the data is intact; the breach is status's to report
  expect(check!.report?.notes.join('\n')).toMatch(/immutability unavailable for repository a/);
}

describe('immutability unavailable', () => {
  it('on local disk: backups warn, status reports a breach (exit 4), check notes it', async () => {
    sb = await makeSandbox({ policies: POLICIES, policy: 'immutable', jobRepositories: '[a]' });
    const config = await sb.load();
    await initRepo(config, 'a', sb.clock);
    await expectUnavailable(config, sb, /local disk storage cannot lock objects/);

    const r = await cli(['--config', sb.configPath, 'status'], sb.env);
    expect(r.code).toBe(4);
    expect(r.stdout).toContain('immutability unavailable for repository a');
  });

  describe.runIf(s3ServerRunnable)('on the Swift S3 server (no Object Lock)', () => {
    let server: S3TestServer;
    beforeAll(async () => {
      server = await startS3Server();
    }, 120_000);
    afterAll(async () => {
      await server?.stop();
    });

    async function s3Sandbox(): Promise<{ s: Sandbox; config: LifeboatConfig }> {
      const bucket = await server.createBucket();
      sb = await makeSandbox({
        policies: POLICIES,
        policy: 'immutable',
        jobRepositories: '[a, b]',
        repositories: (dir) =>
          [
            '  a:',
            `    url: s3://${bucket}/repo`,
            '    password: env:LB_PW_A',
            '    s3:',
            `      endpoint: ${server.endpoint}`,
            `      region: ${server.region}`,
            '      accessKeyId: env:LB_S3_KEY',
            '      secretAccessKey: env:LB_S3_SECRET',
            '  b:',
            `    url: file://${join(dir, 'repo-b')}`,
            '    password: env:LB_PW_B',
          ].join('\n'),
        env: { LB_S3_KEY: server.accessKeyId, LB_S3_SECRET: server.secretAccessKey },
      });
      const config = await sb.load();
      await initRepo(config, 'a', sb.clock, {
        s3: {
          endpoint: server.endpoint,
          region: server.region,
          accessKeyId: server.accessKeyId,
          secretAccessKey: server.secretAccessKey,
        },
      });
      await initRepo(config, 'b', sb.clock);
      return { s: sb, config };
    }

    it('backups warn, status reports a breach, check notes it', async () => {
      const { s, config } = await s3Sandbox();
      await expectUnavailable(config, s, /the bucket has no S3 Object Lock/);
    }, 120_000);

    it('a copy into the bucket says so too, and records it in the copy record', async () => {
      const { s, config } = await s3Sandbox();
      // Back up into a (Swift), copy into b (local disk), and back.
      const [backup] = await backupJobs(config, { jobs: ['site'] }, s.deps);
      expect(backup?.outcome).toBe('success');
      const copy = await copyRestorePoints(config, { from: 'a', to: 'b', jobs: [], dryRun: false }, s.deps);
      expect(copy.jobs[0]!.copied).toHaveLength(1);
      expect(copy.jobs[0]!.immutability).toMatchObject({
        state: 'unavailable',
        reason: expect.stringMatching(/^immutability unavailable for repository b: local disk/),
      });
      const back = await copyRestorePoints(config, { from: 'b', to: 'a', jobs: [], dryRun: false }, s.deps);
      expect(back.jobs[0]).toMatchObject({ copied: [], skipped: 1 });
      expect(back.jobs[0]!.immutability).toMatchObject({
        state: 'unavailable',
        reason: expect.stringMatching(
          /^immutability unavailable for repository a: the bucket has no S3 Object Lock/,
        ),
      });
      const records = await backupDetails(config, s, 'a');
      const copyRecord = records.find((r) => r.kind === 'copy');
      expect(copyRecord!.details).toMatchObject({
        from: 'b',
        to: 'a',
        immutability: { state: 'unavailable' },
      });
    }, 120_000);
  });
});

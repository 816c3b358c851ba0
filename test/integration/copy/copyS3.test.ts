/**
 * Copies between local disk and a real S3-compatible server (OpenStack
 * Swift with s3api, test/helpers/s3server.ts), both ways, each test in its
 * own bucket: the copy restores bit-identical, passes check, and a second
 * copy adds nothing but its journal record.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backupJobs } from '../../../src/app/backup.js';
import { checkRepositories } from '../../../src/app/check.js';
import { copyRestorePoints } from '../../../src/app/copy.js';
import { restoreJob } from '../../../src/app/restore.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { s3ServerRunnable, startS3Server, type S3TestServer } from '../../helpers/s3server.js';
import { initRepo, makeSandbox, readTree, type Sandbox } from './copyFixture.js';

describe.runIf(s3ServerRunnable)('copy between local disk and S3 (Swift)', () => {
  let server: S3TestServer;
  let sb: Sandbox | undefined;

  beforeAll(async () => {
    server = await startS3Server();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await sb?.cleanup();
    sb = undefined;
  });

  /** A sandbox whose repository `s3name` lives in a fresh bucket, the other on local disk. */
  async function sandbox(
    s3name: 'a' | 'b',
  ): Promise<{ sb: Sandbox; config: LifeboatConfig; bucket: string }> {
    const bucket = await server.createBucket();
    const s3 = [
      `    url: s3://${bucket}/lifeboat`,
      `    password: env:LB_PW_${s3name.toUpperCase()}`,
      '    packSize: 1MiB',
      '    s3:',
      `      endpoint: ${server.endpoint}`,
      `      region: ${server.region}`,
      '      accessKeyId: env:LB_S3_KEY',
      '      secretAccessKey: env:LB_S3_SECRET',
    ].join('\n');
    const local = (dir: string, name: string) =>
      [`    url: file://${join(dir, `repo-${name}`)}`, `    password: env:LB_PW_${name.toUpperCase()}`].join(
        '\n',
      );
    sb = await makeSandbox({
      repositories: (dir) =>
        ['  a:', s3name === 'a' ? s3 : local(dir, 'a'), '  b:', s3name === 'b' ? s3 : local(dir, 'b')].join(
          '\n',
        ),
      env: { LB_S3_KEY: server.accessKeyId, LB_S3_SECRET: server.secretAccessKey },
    });
    const config = await sb.load();
    const s3Options = {
      s3: {
        endpoint: server.endpoint,
        region: server.region,
        accessKeyId: server.accessKeyId,
        secretAccessKey: server.secretAccessKey,
      },
    };
    await initRepo(config, 'a', sb.clock, s3name === 'a' ? s3Options : {});
    await initRepo(config, 'b', sb.clock, s3name === 'b' ? s3Options : {});
    return { sb, config, bucket };
  }

  async function bucketKeys(bucket: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await server.client.send(
        new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) if (o.Key) out.push(o.Key);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  async function backupCopyRestore(config: LifeboatConfig, s: Sandbox) {
    const [backup] = await backupJobs(config, { jobs: ['site'] }, s.deps);
    expect(backup?.outcome).toBe('success');
    const copy = await copyRestorePoints(
      config,
      { from: 'a', to: 'b', jobs: ['site'], dryRun: false },
      s.deps,
    );
    expect(copy.ok).toBe(true);
    expect(copy.jobs[0]!.copied.map((c) => c.sourceId)).toEqual([backup!.snapshotId]);
    const target = join(s.dir, 'restored');
    const restored = await restoreJob(
      config,
      { job: 'site', snapshot: 'latest', repository: 'b', dryRun: false, target },
      s.deps,
    );
    expect(restored.repository).toBe('b');
    expect(await readTree(join(target, s.source))).toEqual(await readTree(s.source));
    const [check] = await checkRepositories(config, { repository: 'b', readData: { kind: 'all' } }, s.deps);
    expect(check!.report?.problems).toEqual([]);
    expect(check!.report?.ok).toBe(true);
  }

  it('copies local → S3; the copy restores bit-identical; a second copy adds only a journal record', async () => {
    const { sb: s, config, bucket } = await sandbox('b');
    await backupCopyRestore(config, s);
    const before = await bucketKeys(bucket);
    expect(before.some((k) => k.startsWith('lifeboat/snapshots/'))).toBe(true);
    const again = await copyRestorePoints(config, { from: 'a', to: 'b', jobs: [], dryRun: false }, s.deps);
    expect(again.jobs[0]).toMatchObject({ copied: [], skipped: 1, stats: { bytesRead: 0, newBlobs: 0 } });
    const added = (await bucketKeys(bucket)).filter((k) => !before.includes(k));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^lifeboat\/journal\//);
  }, 120_000);

  it('copies S3 → local; the copy restores bit-identical', async () => {
    const { sb: s, config } = await sandbox('a');
    await backupCopyRestore(config, s);
  }, 120_000);
});

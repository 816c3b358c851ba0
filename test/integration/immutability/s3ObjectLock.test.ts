/**
 * The positive Object Lock path of the real S3 backend, over real HTTP: the
 * AWS SDK signs and sends every request, the real Swift S3 server stores
 * the objects, and test/helpers/objectLockProxy.ts — an EMULATION, because
 * no S3 server that runs here has Object Lock (Swift's s3api has none;
 * MinIO and Ceph cannot be installed) — answers the Object Lock requests
 * between them: GetObjectLockConfiguration, retention on PutObject and
 * CreateMultipartUpload, GetObjectRetention, PutObjectRetention, and refusal
 * of DeleteObject / DeleteObjects entries for locked objects. What the
 * emulation differs in from AWS is listed in its file comment.
 *
 * Retention is verified in the proxy's recorded state, never by asking
 * lifeboat. Covered: the S3 backend's lock calls one by one; a CLI backup
 * locks every object its restore point needs, status and report show it,
 * check verifies it and reports a retention removed or shortened behind
 * lifeboat's back, the next backup mends it; CLI forget and prune leave
 * locked objects alone (exit 0, the documented messages, no delete of a
 * locked object ever sent); with a clock the test drives (shared by lifeboat
 * and the proxy): later backups extend only what retention keeps, and forget
 * and prune finish once the retention has ended.
 */
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ListObjectsV2Command, PutObjectRetentionCommand } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { backupJobs } from '../../../src/app/backup.js';
import { checkRepositories } from '../../../src/app/check.js';
import { forgetSnapshots } from '../../../src/app/forget.js';
import { pruneRepository } from '../../../src/app/prune.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { AccessDeniedError } from '../../../src/errors.js';
import type { PruneOutcome } from '../../../src/repository/prune.js';
import {
  StorageIoError,
  StorageNotFoundError,
  StorageUnsupportedError,
} from '../../../src/storage/errors.js';
import { S3Storage, type S3StorageOptions } from '../../../src/storage/s3/index.js';
import { cli } from '../../helpers/cli.js';
import { ObjectLockProxy } from '../../helpers/objectLockProxy.js';
import { s3ServerRunnable, startS3Server, type S3TestServer } from '../../helpers/s3server.js';
import { randomStream } from '../../storage/contract.js';
import { initRepo, makeSandbox, type Sandbox } from '../copy/copyFixture.js';

const MIB = 1024 * 1024;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PREFIX = 'repo/';
/** Retention as the emulation stores it: to the second, rounded down. */
const toSecond = (ms: number) => Math.floor(ms / 1000) * 1000;

describe.runIf(s3ServerRunnable)('S3 Object Lock over HTTP (emulated by objectLockProxy)', () => {
  let server: S3TestServer;
  let proxy: ObjectLockProxy | undefined;
  let sb: Sandbox | undefined;
  let storage: S3Storage | undefined;

  beforeAll(async () => {
    server = await startS3Server();
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  afterEach(async () => {
    await storage?.close();
    await proxy?.close();
    await sb?.cleanup();
    storage = proxy = sb = undefined;
  });

  /** A fresh bucket with (emulated) Object Lock, behind a fresh proxy timed by `now`. */
  async function lockedBucket(now?: () => number): Promise<{ proxy: ObjectLockProxy; bucket: string }> {
    const bucket = await server.createBucket();
    proxy = await ObjectLockProxy.start({ upstream: server.endpoint, client: server.client, now });
    proxy.enableBucket(bucket);
    return { proxy, bucket };
  }

  function s3Options(p: ObjectLockProxy): S3StorageOptions {
    return {
      endpoint: p.endpoint,
      region: server.region,
      accessKeyId: server.accessKeyId,
      secretAccessKey: server.secretAccessKey,
    };
  }

  /** The keys in the bucket under the repository prefix, listed from Swift directly. */
  async function storedKeys(bucket: string): Promise<string[]> {
    const out: string[] = [];
    let token: string | undefined;
    do {
      const page = await server.client.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: PREFIX, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? []) out.push(o.Key!.slice(PREFIX.length));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  /** A sandbox whose repository `a` is s3://bucket/repo through the proxy, created with cheap scrypt. */
  async function s3Sandbox(
    policies: string,
    p: ObjectLockProxy,
    bucket: string,
  ): Promise<{ s: Sandbox; config: LifeboatConfig; run: (...args: string[]) => ReturnType<typeof cli> }> {
    sb = await makeSandbox({
      policies,
      policy: 'immutable',
      jobRepositories: '[a]',
      repositories: () =>
        [
          '  a:',
          `    url: s3://${bucket}/repo`,
          '    password: env:LB_PW_A',
          '    packSize: 1MiB',
          '    s3:',
          `      endpoint: ${p.endpoint}`,
          `      region: ${server.region}`,
          '      accessKeyId: env:LB_S3_KEY',
          '      secretAccessKey: env:LB_S3_SECRET',
        ].join('\n'),
      env: { LB_S3_KEY: server.accessKeyId, LB_S3_SECRET: server.secretAccessKey },
    });
    const s = sb;
    const config = await s.load();
    await initRepo(config, 'a', s.clock, { s3: s3Options(p) });
    return { s, config, run: (...args: string[]) => cli(['--config', s.configPath, ...args], s.env) };
  }

  describe('the S3 backend', () => {
    it('detects Object Lock, locks on upload (single and multipart), reads and extends retention', async () => {
      const { proxy: p, bucket } = await lockedBucket();
      storage = await S3Storage.open(`s3://${bucket}/repo`, { ...s3Options(p), partSize: 5 * MIB });
      expect(storage.capabilities.objectLock).toBe(true);
      expect(p.counts.GetObjectLockConfiguration).toBe(1);

      const until = new Date(Date.now() + DAY + 123);
      await storage.put('data/single', randomBytes(1000), { retainUntil: until });
      await storage.put('data/multi', randomStream(12 * MIB).stream, { retainUntil: until });
      expect(p.counts['PutObject with retention']).toBe(1);
      expect(p.counts['CreateMultipartUpload with retention']).toBe(1);
      const locked = { mode: 'COMPLIANCE', retainUntil: new Date(toSecond(until.getTime())) };
      expect(p.retentionOf(bucket, 'repo/data/single')).toEqual(locked);
      expect(p.retentionOf(bucket, 'repo/data/multi')).toEqual(locked);
      expect(await storage.getRetention('data/multi')).toEqual(locked);

      await storage.put('data/plain', randomBytes(10));
      expect(await storage.getRetention('data/plain')).toBeUndefined(); // NoSuchObjectLockConfiguration
      await expect(storage.getRetention('data/absent')).rejects.toBeInstanceOf(StorageNotFoundError);

      // Never shortened: asking for less sends no PutObjectRetention at all.
      await storage.extendRetention('data/single', new Date(until.getTime() - HOUR));
      expect(p.counts.PutObjectRetention).toBeUndefined();
      expect(p.retentionOf(bucket, 'repo/data/single')).toEqual(locked);
      const later = new Date(until.getTime() + 2 * DAY);
      await storage.extendRetention('data/single', later);
      await storage.extendRetention('data/plain', later);
      expect(p.counts.PutObjectRetention).toBe(2);
      const extended = { mode: 'COMPLIANCE', retainUntil: new Date(toSecond(later.getTime())) };
      expect(p.retentionOf(bucket, 'repo/data/single')).toEqual(extended);
      expect(p.retentionOf(bucket, 'repo/data/plain')).toEqual(extended);
      expect(p.refused).toEqual([]);
    });

    it('a locked object cannot be deleted, one by one or in a batch, and COMPLIANCE cannot be shortened', async () => {
      const { proxy: p, bucket } = await lockedBucket();
      storage = await S3Storage.open(`s3://${bucket}/repo`, s3Options(p));
      const until = new Date(Date.now() + DAY);
      await storage.put('data/locked', randomBytes(100), { retainUntil: until });
      await storage.put('data/free', randomBytes(100));

      const single = await storage.delete('data/locked').catch((e: unknown) => e);
      expect(single).toBeInstanceOf(AccessDeniedError);
      expect((single as Error).message).toMatch(/delete data\/locked .*protected by object lock/);
      expect((single as AccessDeniedError).hint).toMatch(/Object Lock/);

      const batch = await storage.deleteMany(['data/locked', 'data/free']).catch((e: unknown) => e);
      expect(batch).toBeInstanceOf(StorageIoError);
      expect((batch as Error).message).toMatch(
        /could not delete 1 objects .*: data\/locked \(AccessDenied\)/,
      );
      expect(await storedKeys(bucket)).toEqual(['data/locked']); // the unlocked one went
      expect(p.refused.map((r) => `${r.op} ${r.key}`)).toEqual([
        'DeleteObject repo/data/locked',
        'DeleteObjects repo/data/locked',
      ]);

      // The emulation itself refuses to shorten a COMPLIANCE retention, as S3 does.
      const shorten = await storage.client
        .send(
          new PutObjectRetentionCommand({
            Bucket: bucket,
            Key: 'repo/data/locked',
            Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(until.getTime() - HOUR) },
          }),
        )
        .catch((e: unknown) => e);
      expect(shorten).toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      expect(p.retentionOf(bucket, 'repo/data/locked')?.retainUntil.getTime()).toBe(
        toSecond(until.getTime()),
      );
    });

    it('locks in GOVERNANCE mode when asked; a bucket without Object Lock is reported as such', async () => {
      const { proxy: p, bucket } = await lockedBucket();
      storage = await S3Storage.open(`s3://${bucket}/repo`, {
        ...s3Options(p),
        objectLockMode: 'GOVERNANCE',
      });
      await storage.put('data/g', randomBytes(10), { retainUntil: new Date(Date.now() + DAY) });
      expect(p.retentionOf(bucket, 'repo/data/g')?.mode).toBe('GOVERNANCE');
      await storage.close();

      // Same proxy, a bucket it does not give Object Lock: Swift answers, and lifeboat says it cannot lock.
      const plain = await server.createBucket();
      storage = await S3Storage.open(`s3://${plain}/repo`, s3Options(p));
      expect(storage.capabilities.objectLock).toBe(false);
      await expect(storage.getRetention('data/x')).rejects.toBeInstanceOf(StorageUnsupportedError);
    });
  });

  it('CLI: a backup locks everything its restore point needs; status, report and check verify it', async () => {
    const { proxy: p, bucket } = await lockedBucket();
    const { run } = await s3Sandbox('  immutable: { rpo: 1d, immutableFor: 30d }', p, bucket);
    const started = Date.now();
    let r = await run('backup', 'site');
    expect(r.code, r.stderr).toBe(0);
    const ended = Date.now();

    // Every object but the journal and lock files belongs to the one restore point: all locked,
    // COMPLIANCE, until now + 30d (plus at most the one day of slack).
    const keys = (await storedKeys(bucket)).filter(
      (k) => !k.startsWith('journal/') && !k.startsWith('locks/'),
    );
    const snapshotKeys = keys.filter((k) => k.startsWith('snapshots/'));
    expect(snapshotKeys).toHaveLength(1);
    expect(keys).toContain('config');
    expect(keys.some((k) => k.startsWith('keys/'))).toBe(true);
    expect(keys.some((k) => k.startsWith('index/'))).toBe(true);
    expect(keys.filter((k) => k.startsWith('data/')).length).toBeGreaterThanOrEqual(3);
    for (const key of keys) {
      const lock = p.retentionOf(bucket, PREFIX + key);
      expect(lock, key).toBeDefined();
      expect(lock!.mode).toBe('COMPLIANCE');
      expect(lock!.retainUntil.getTime(), key).toBeGreaterThanOrEqual(toSecond(started + 30 * DAY));
      expect(lock!.retainUntil.getTime(), key).toBeLessThanOrEqual(ended + 31 * DAY);
    }
    for (const key of await storedKeys(bucket))
      if (key.startsWith('journal/')) expect(p.retentionOf(bucket, PREFIX + key), key).toBeUndefined();
    // One retention read and one write per object: the read is not repeated before the write.
    expect(p.counts.GetObjectRetention).toBe(keys.length);
    expect(p.counts.PutObjectRetention).toBe(keys.length);

    r = await run('--json', 'status');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const status = JSON.parse(r.stdout) as {
      jobs: Array<{ repositories: Array<{ immutability?: { state: string; lockedUntil?: string } }> }>;
    };
    expect(status.jobs[0]!.repositories[0]!.immutability).toMatchObject({ state: 'ok' });
    r = await run('report', '--format', 'json', '--fail-on', 'never');
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      jobs: Array<{ controls: Array<{ id: string; status: string; measured: string }> }>;
    };
    expect(report.jobs[0]!.controls.find((c) => c.id === 'immutability')).toMatchObject({
      status: 'pass',
      measured: expect.stringMatching(/^a: newest restore point locked until /),
    });

    r = await run('check');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`retention verified: ${keys.length} objects of 1 restore points`));

    // Behind lifeboat's back: a pack loses its retention, the snapshot's is cut to one day.
    const pack = keys.find((k) => k.startsWith('data/'))!;
    const snapshot = snapshotKeys[0]!;
    p.dropRetention(bucket, PREFIX + pack);
    p.setRetention(bucket, PREFIX + snapshot, {
      mode: 'COMPLIANCE',
      retainUntil: new Date(Date.now() + DAY),
    });
    r = await run('check');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${pack} must stay undeletable until`);
    expect(r.stdout).toMatch(new RegExp(`${pack} must stay undeletable until \\S+ but has no retention`));
    expect(r.stdout).toMatch(
      new RegExp(`${snapshot} must stay undeletable until \\S+ but is locked only until`),
    );
    expect(r.stdout).toContain('hint: the data is intact; back up (or copy) the affected jobs again');
    r = await run('status');
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/newest restore point \w+ is locked only until .* requires/);

    // The next backup locks again what the kept restore points need.
    r = await run('backup', 'site');
    expect(r.code, r.stderr).toBe(0);
    expect(p.retentionOf(bucket, PREFIX + pack)!.retainUntil.getTime()).toBeGreaterThan(
      Date.now() + 29 * DAY,
    );
    r = await run('check');
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/retention verified/);
    expect(p.refused).toEqual([]);
  }, 180_000);

  it('CLI: forget and prune leave locked objects alone and say until when (exit 0)', async () => {
    const { proxy: p, bucket } = await lockedBucket();
    const { s, run } = await s3Sandbox(
      '  immutable: { rpo: 1d, immutableFor: 2d, retention: { last: 1 } }',
      p,
      bucket,
    );
    expect((await run('backup', 'site')).code).toBe(0);
    const [oldSnapshot] = (await storedKeys(bucket)).filter((k) => k.startsWith('snapshots/'));
    const oldLock = p.retentionOf(bucket, PREFIX + oldSnapshot!)!.retainUntil.toISOString();
    // The big file is replaced: its packs are needed by the old restore point only.
    await rm(join(s.source, 'random.bin'));
    await writeFile(join(s.source, 'other.bin'), randomBytes(MIB));
    expect((await run('backup', 'site')).code).toBe(0);
    const before = await storedKeys(bucket);

    let r = await run('forget', 'site');
    expect(r.code, r.stderr).toBe(0);
    const oldId = oldSnapshot!.slice('snapshots/'.length);
    expect(r.stdout).toContain(
      `locked ${oldId.slice(0, 12)} until ${oldLock} (Object Lock): forgotten after that`,
    );
    expect(r.stdout).toContain('forgot 0 snapshots');
    r = await run('prune');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('nothing to prune');
    expect(r.stdout).not.toContain('keep '); // nothing would be deleted, so nothing is "kept"
    expect(await storedKeys(bucket)).toEqual(
      expect.arrayContaining(before.filter((k) => !k.startsWith('locks/'))),
    );

    // Behind lifeboat's back the old snapshot object's retention is gone (as after a GOVERNANCE bypass):
    // forget now removes it, and prune finds its packs unused — but still locked, so it keeps them.
    p.dropRetention(bucket, PREFIX + oldSnapshot!);
    r = await run('forget', 'site');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('forgot 1 snapshot');
    r = await run('prune', '--leftover-min-age', '0s');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const kept = [...r.stdout.matchAll(/keep (data\/\S+): locked until (\S+) \(locked\)/g)];
    expect(kept.length).toBeGreaterThan(0);
    const after = await storedKeys(bucket);
    for (const [, key, until] of kept) {
      expect(after).toContain(key);
      expect(until).toBe(p.retentionOf(bucket, PREFIX + key!)!.retainUntil.toISOString());
    }
    expect(after).not.toContain(oldSnapshot);
    // No request to delete a locked object was ever sent.
    expect(p.refused).toEqual([]);
    r = await run('check', '--read-data');
    expect(r.code, r.stdout).toBe(0);
  }, 180_000);

  it('later backups extend what retention keeps; forget and prune finish once the retention ends', async () => {
    // One clock for lifeboat and the proxy, starting now (Swift checks request signatures against real time).
    let now = () => Date.now();
    const { proxy: p, bucket } = await lockedBucket(() => now());
    const { s, config } = await s3Sandbox(
      '  immutable: { rpo: 30d, immutableFor: 10d, retention: { last: 1 } }',
      p,
      bucket,
    );
    const t0 = Date.now();
    s.clock.set(t0);
    now = () => s.clock.now();
    const backup = async () => {
      const [b] = await backupJobs(config, { jobs: ['site'] }, s.deps);
      expect(b?.outcome, b?.error?.message).toBe('success');
      return b!;
    };
    const lockOf = (key: string) => p.retentionOf(bucket, PREFIX + key)?.retainUntil.getTime();

    const old = await backup();
    const oldKeys = (await storedKeys(bucket)).filter(
      (k) => !k.startsWith('journal/') && !k.startsWith('locks/'),
    );
    for (const k of oldKeys) expect(lockOf(k), k).toBe(toSecond(t0 + 11 * DAY)); // 10d + 1d of slack

    s.clock.set(t0 + 5 * DAY);
    await rm(join(s.source, 'random.bin'));
    await writeFile(join(s.source, 'other.bin'), randomBytes(MIB));
    const second = await backup();
    // last: 1 keeps only the second: the first snapshot's own object keeps its old retention, what the
    // second needs (config and keys included) is extended to t0 + 5d + 10d (+ slack).
    expect(lockOf(`snapshots/${old.snapshotId}`)).toBe(toSecond(t0 + 11 * DAY));
    expect(lockOf(`snapshots/${second.snapshotId}`)).toBe(toSecond(t0 + 16 * DAY));
    expect(lockOf('config')).toBe(toSecond(t0 + 16 * DAY));
    const onlyOld = oldKeys.filter((k) => k.startsWith('data/') && lockOf(k) === toSecond(t0 + 11 * DAY));
    expect(onlyOld.length).toBeGreaterThan(0); // the replaced file's packs

    // The old snapshot is locked: forget leaves it, prune deletes nothing.
    const [forget] = await forgetSnapshots(config, { jobs: ['site'], dryRun: false }, s.deps);
    expect(forget!.forgotten).toBe(0);
    expect(forget!.locked).toEqual([
      { id: old.snapshotId, lockedUntil: new Date(toSecond(t0 + 11 * DAY)).toISOString() },
    ]);
    let prune = await pruneRepository(config, 'a', { dryRun: false, leftoverMinAgeMs: 0 }, s.deps);
    expect((prune.summary as PruneOutcome).packsDeleted).toBe(0);

    // t0 + 12d: the old snapshot's lock has ended and forget removes it; its packs are still listed by
    // index files the newer restore point keeps locked, so prune keeps them and says why.
    s.clock.set(t0 + 12 * DAY);
    const [forget2] = await forgetSnapshots(config, { jobs: ['site'], dryRun: false }, s.deps);
    expect(forget2!.forgotten).toBe(1);
    expect(await storedKeys(bucket)).not.toContain(`snapshots/${old.snapshotId}`);
    prune = await pruneRepository(config, 'a', { dryRun: false, leftoverMinAgeMs: 0 }, s.deps);
    const locked = prune.summary.locked ?? [];
    expect(locked.some((l) => l.key.startsWith('index/') && l.reason === 'locked')).toBe(true);
    expect(
      locked.some((l) => l.key.startsWith('data/') && l.reason.startsWith('listed by locked index file')),
    ).toBe(true);
    for (const l of locked) expect(Date.parse(l.lockedUntil)).toBeGreaterThan(s.clock.now());
    let [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'all' } }, s.deps);
    expect(check!.report?.problems).toEqual([]);

    // t0 + 17d: every retention has ended; prune removes what no snapshot needs.
    s.clock.set(t0 + 17 * DAY);
    prune = await pruneRepository(config, 'a', { dryRun: false, leftoverMinAgeMs: 0 }, s.deps);
    expect(prune.summary.locked).toBeUndefined();
    expect((prune.summary as PruneOutcome).packsDeleted).toBeGreaterThan(0);
    const left = await storedKeys(bucket);
    for (const k of onlyOld) expect(left).not.toContain(k);
    [check] = await checkRepositories(config, { repository: 'a', readData: { kind: 'all' } }, s.deps);
    expect(check!.report?.ok).toBe(true);
    expect(check!.report?.stats.unusedBlobs).toBe(0);

    // Lifeboat never sent a request to delete (or shorten) a locked object.
    expect(p.refused).toEqual([]);
  }, 240_000);
});

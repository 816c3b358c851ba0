/**
 * `run --due` keeps copies within policy: after a backup into the job's
 * first repository, the copy into its second one is due and runs (the copy
 * executor of src/app/copy.ts); once it is there, it is not due again until
 * the next backup.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupJobs } from '../../../src/app/backup.js';
import { openConfiguredRepository } from '../../../src/app/repositories.js';
import { runDue } from '../../../src/app/runDue.js';
import type { LifeboatConfig } from '../../../src/config/schema.js';
import { initRepo, makeSandbox, type Sandbox } from './copyFixture.js';

let sb: Sandbox;
let config: LifeboatConfig;

beforeAll(async () => {
  sb = await makeSandbox({ policies: '  plain: { rpo: 1d, copies: 2, offsite: 1 }' });
  config = await sb.load();
  await initRepo(config, 'a', sb.clock);
  await initRepo(config, 'b', sb.clock);
});
afterAll(async () => {
  await sb?.cleanup();
});

describe('run --due and copies', () => {
  it('copies a new backup into the second repository once, then waits for the next backup', async () => {
    const [backup] = await backupJobs(config, { jobs: ['site'] }, sb.deps);
    expect(backup?.outcome).toBe('success');
    sb.clock.advance(60_000);

    const first = await runDue(config, { due: true, jobs: [], dryRun: false }, sb.deps);
    const copy = first.activities.find((a) => a.kind === 'copy');
    expect(copy).toMatchObject({ job: 'site', repository: 'b', outcome: 'success' });
    expect(copy!.summary).toContain('1 restore point copied from a to b');
    expect(copy!.snapshotIds).toHaveLength(1);

    const b = await openConfiguredRepository(config, 'b', sb.deps);
    try {
      const [snapshot] = await b.listSnapshots();
      expect(snapshot!.id).toBe(copy!.snapshotIds[0]);
      expect(snapshot!.copiedFrom?.snapshot).toBe(backup!.snapshotId);
    } finally {
      await b.close();
    }

    sb.clock.advance(60_000);
    const second = await runDue(config, { due: true, jobs: [], dryRun: true }, sb.deps);
    const planned = second.plan.find((p) => p.kind === 'copy');
    expect(planned).toMatchObject({ due: false });
    expect(planned!.reason).toMatch(/b has the newest backup/);
  });
});

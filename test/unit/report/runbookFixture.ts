/** The runbook's targets for the shared fixture. */
import type { ReportTargets, RunbookTargets } from '../../../src/report/index.js';

export function runbookTargets(t: ReportTargets): RunbookTargets {
  const hints: Record<string, RunbookTargets['jobs'][number]['restore']> = {
    web: { paths: ['/srv/www'] },
    db: { globals: true },
    archive: { device: '/dev/vdb' },
  };
  return {
    configPath: '/etc/lifeboat/life boat.yaml',
    jobs: t.jobs.map((j) => ({ ...j, restore: hints[j.job] ?? {} })),
    repositories: [
      { name: 'local', offsite: false, location: 'file:///var/backups/lifeboat' },
      { name: 'offsite', offsite: true, location: 's3://backups-eu/lifeboat' },
      { name: 'vault', offsite: false, location: 'file:///mnt/vault/lifeboat' },
    ],
    scratchDir: '/var/lib/lifeboat/scratch/restore',
    timeZone: 'UTC',
    generator: t.generator,
  };
}

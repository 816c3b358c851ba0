import { describe, expect, it } from 'vitest';
import { renderMetrics } from '../../../src/notify/prometheus.js';

describe('renderMetrics', () => {
  it('renders every family with HELP and TYPE, leaving out unknown values', () => {
    const text = renderMetrics({
      jobs: [
        {
          job: 'web',
          rpoSeconds: 3600,
          rtoSeconds: 1800,
          lastDrillDurationSeconds: 95.25,
          repositories: [
            { repository: 'local', lastSuccessTimestamp: 1717243200.5, restorePointAgeSeconds: 120 },
            { repository: 'offsite' },
          ],
        },
        { job: 'db', rpoSeconds: 900, repositories: [{ repository: 'local', restorePointAgeSeconds: 30 }] },
      ],
      runsTotal: [
        { job: 'web', outcome: 'failure', count: 1 },
        { job: 'web', outcome: 'success', count: 41 },
      ],
      repositories: [{ repository: 'local', bytes: 123456789 }, { repository: 'offsite' }],
    });
    expect(text).toBe(
      [
        '# HELP lifeboat_last_success_timestamp_seconds End of the newest good backup of the job in the repository (Unix time).',
        '# TYPE lifeboat_last_success_timestamp_seconds gauge',
        'lifeboat_last_success_timestamp_seconds{job="web",repository="local"} 1717243200.5',
        '# HELP lifeboat_restore_point_age_seconds Age of the newest good restore point of the job in the repository.',
        '# TYPE lifeboat_restore_point_age_seconds gauge',
        'lifeboat_restore_point_age_seconds{job="web",repository="local"} 120',
        'lifeboat_restore_point_age_seconds{job="db",repository="local"} 30',
        '# HELP lifeboat_rpo_target_seconds Recovery point objective of the job.',
        '# TYPE lifeboat_rpo_target_seconds gauge',
        'lifeboat_rpo_target_seconds{job="web"} 3600',
        'lifeboat_rpo_target_seconds{job="db"} 900',
        '# HELP lifeboat_last_drill_duration_seconds Measured restore time of the last restore drill of the job.',
        '# TYPE lifeboat_last_drill_duration_seconds gauge',
        'lifeboat_last_drill_duration_seconds{job="web"} 95.25',
        '# HELP lifeboat_rto_target_seconds Recovery time objective of the job.',
        '# TYPE lifeboat_rto_target_seconds gauge',
        'lifeboat_rto_target_seconds{job="web"} 1800',
        '# HELP lifeboat_job_runs_total Backup runs of the job by outcome, counted on this host.',
        '# TYPE lifeboat_job_runs_total counter',
        'lifeboat_job_runs_total{job="web",outcome="failure"} 1',
        'lifeboat_job_runs_total{job="web",outcome="success"} 41',
        '# HELP lifeboat_repository_bytes Bytes stored in the repository (packs).',
        '# TYPE lifeboat_repository_bytes gauge',
        'lifeboat_repository_bytes{repository="local"} 123456789',
        '',
      ].join('\n'),
    );
  });

  it('escapes label values', () => {
    const text = renderMetrics({
      jobs: [{ job: 'a"b\\c\nd', rpoSeconds: 1, repositories: [] }],
      runsTotal: [],
      repositories: [],
    });
    expect(text).toContain('lifeboat_rpo_target_seconds{job="a\\"b\\\\c\\nd"} 1\n');
  });
});

/**
 * Metrics for node_exporter's textfile collector: `<textfileDir>/lifeboat.prom`, replaced
 * atomically so the collector never reads half a file. Rendering is pure; writing refuses to
 * create the directory (a missing one means node_exporter looks elsewhere).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../platform/atomicWrite.js';

export const METRICS_FILE = 'lifeboat.prom';

export interface JobMetrics {
  job: string;
  rpoSeconds?: number;
  rtoSeconds?: number;
  lastDrillDurationSeconds?: number;
  repositories: Array<{
    repository: string;
    /** End of the newest good backup, seconds since the epoch. */
    lastSuccessTimestamp?: number;
    restorePointAgeSeconds?: number;
  }>;
}

export interface MetricsModel {
  jobs: JobMetrics[];
  /** Backup runs by job and outcome, counted on this host since its state began. */
  runsTotal: Array<{ job: string; outcome: string; count: number }>;
  repositories: Array<{ repository: string; bytes?: number }>;
}

interface Family {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  samples: Array<{ labels: Record<string, string>; value: number | undefined }>;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(Math.round(value * 1000) / 1000);
}

/** The text exposition format (HELP, TYPE, samples), families in a fixed order. */
export function renderMetrics(model: MetricsModel): string {
  const perRepo = model.jobs.flatMap((j) => j.repositories.map((r) => ({ job: j.job, ...r })));
  const families: Family[] = [
    {
      name: 'lifeboat_last_success_timestamp_seconds',
      help: 'End of the newest good backup of the job in the repository (Unix time).',
      type: 'gauge',
      samples: perRepo.map((r) => ({
        labels: { job: r.job, repository: r.repository },
        value: r.lastSuccessTimestamp,
      })),
    },
    {
      name: 'lifeboat_restore_point_age_seconds',
      help: 'Age of the newest good restore point of the job in the repository.',
      type: 'gauge',
      samples: perRepo.map((r) => ({
        labels: { job: r.job, repository: r.repository },
        value: r.restorePointAgeSeconds,
      })),
    },
    {
      name: 'lifeboat_rpo_target_seconds',
      help: 'Recovery point objective of the job.',
      type: 'gauge',
      samples: model.jobs.map((j) => ({ labels: { job: j.job }, value: j.rpoSeconds })),
    },
    {
      name: 'lifeboat_last_drill_duration_seconds',
      help: 'Measured restore time of the last restore drill of the job.',
      type: 'gauge',
      samples: model.jobs.map((j) => ({ labels: { job: j.job }, value: j.lastDrillDurationSeconds })),
    },
    {
      name: 'lifeboat_rto_target_seconds',
      help: 'Recovery time objective of the job.',
      type: 'gauge',
      samples: model.jobs.map((j) => ({ labels: { job: j.job }, value: j.rtoSeconds })),
    },
    {
      name: 'lifeboat_job_runs_total',
      help: 'Backup runs of the job by outcome, counted on this host.',
      type: 'counter',
      samples: model.runsTotal.map((r) => ({ labels: { job: r.job, outcome: r.outcome }, value: r.count })),
    },
    {
      name: 'lifeboat_repository_bytes',
      help: 'Bytes stored in the repository (packs).',
      type: 'gauge',
      samples: model.repositories.map((r) => ({ labels: { repository: r.repository }, value: r.bytes })),
    },
  ];
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      // An unknown value is left out rather than written as 0, which would look like a fact.
      if (s.value === undefined) continue;
      const labels = Object.entries(s.labels)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push(`${f.name}{${labels}} ${formatValue(s.value)}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The collector directory is missing or not a directory. */
export class MetricsDirectoryError extends Error {}

/** Replace `<dir>/lifeboat.prom` atomically; the directory must exist. Returns the file's path. */
export async function writeMetricsFile(dir: string, text: string): Promise<string> {
  const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') {
      throw new MetricsDirectoryError(
        `the Prometheus textfile directory ${dir} does not exist; create it (the directory node_exporter's ` +
          '--collector.textfile.directory reads) or fix notifications.prometheus.textfileDir',
      );
    }
    throw err;
  });
  if (!info.isDirectory()) {
    throw new MetricsDirectoryError(`the Prometheus textfile directory ${dir} is not a directory`);
  }
  const file = join(dir, METRICS_FILE);
  await writeFileAtomic(file, text, { mode: 0o644 });
  return file;
}

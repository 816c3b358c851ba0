/**
 * `lifeboat schedule show` (the next times each job's activities run) and `lifeboat schedule
 * install` (a crontab entry, a systemd service + timer, or a Kubernetes CronJob that calls
 * `lifeboat run --due` every five minutes). lifeboat itself decides what is due, so every
 * scheduler only needs to call it often; the generated files differ in how they keep secrets,
 * state and hardening.
 */
import { access, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { LifeboatConfig } from '../config/schema.js';
import { isSecretRef, type SecretRef } from '../config/secretRef.js';
import { UsageError } from '../errors.js';
import { formatDuration } from '../policy/duration.js';
import { nextRuns } from '../policy/schedule.js';
import { scheduleLabel } from '../policy/ticks.js';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { VERSION } from '../version.js';
import type { Deps } from './deps.js';
import { jobRepositoryNames } from './repositories.js';
import { runDue, type ActivityExecutors, type PlanItem } from './runDue.js';
import { isoTime } from './runRecord.js';
import { stateDir } from './stateDir.js';

const DAY = 86_400_000;

// ---------------------------------------------------------------------------------------------
// show

export interface ScheduledActivity {
  id: string;
  kind: PlanItem['kind'];
  job?: string;
  repository: string;
  /** How it is scheduled, in words. */
  cadence: string;
  /** The next times (ISO); the first is now when it is due. */
  times: string[];
  due: boolean;
  reason: string;
  /** False when this version cannot run this kind of activity. */
  available: boolean;
  /** The zone its times are best read in: the job's schedule's, else defaults.timezone. */
  timeZone: string;
}

export interface ScheduleShowResult {
  generatedAt: string;
  count: number;
  activities: ScheduledActivity[];
  warnings: string[];
}

/** The next `count` times of every activity of the selected jobs, from the plan and the journal. */
export async function showSchedule(
  config: LifeboatConfig,
  opts: { jobs: string[]; count: number },
  deps: Deps,
  executors?: ActivityExecutors,
): Promise<ScheduleShowResult> {
  const now = deps.clock.now();
  const plan = await runDue(config, { due: true, jobs: opts.jobs, dryRun: true }, deps, executors);
  const activities = plan.plan.map((item): ScheduledActivity => {
    const job = item.job ? config.jobs[item.job] : undefined;
    const policy = job ? config.policies[job.policy] : undefined;
    const first = item.due ? now : item.nextAt;
    let cadence: string;
    let times: number[];
    switch (item.kind) {
      case 'backup':
      case 'copy': {
        const s = job?.schedule;
        cadence = s ? scheduleLabel(s) : 'only when started by hand';
        if (item.kind === 'copy') cadence = `after each backup, ${cadence}`;
        times = s ? nextRuns(s, now, opts.count) : [];
        if (item.due) times = [now, ...times].slice(0, opts.count);
        break;
      }
      case 'drill':
      case 'check': {
        const every =
          item.kind === 'drill' ? policy?.drill?.every : minimumCheckEvery(config, item.repository);
        cadence =
          every === undefined ? 'not required' : `every ${formatDuration(every)} after the last success`;
        times = first === undefined || every === undefined ? [] : series(first, every, opts.count);
        break;
      }
      case 'retention':
        cadence = 'after new backups, at most once a day';
        times = first === undefined ? [] : series(first, DAY, opts.count);
        break;
    }
    return {
      id: item.id,
      kind: item.kind,
      ...(item.job === undefined ? {} : { job: item.job }),
      repository: item.repository,
      cadence,
      times: times.map(isoTime),
      due: item.due,
      reason: item.reason,
      available: item.available,
      timeZone: job?.schedule?.timezone ?? config.defaults.timezone,
    };
  });
  return { generatedAt: isoTime(now), count: opts.count, activities, warnings: plan.warnings };
}

function series(first: number, every: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i * every);
}

function minimumCheckEvery(config: LifeboatConfig, repository: string): number | undefined {
  let min: number | undefined;
  for (const job of Object.values(config.jobs)) {
    if (!jobRepositoryNames(config, job).includes(repository)) continue;
    const every = config.policies[job.policy]?.check?.every;
    if (every !== undefined && (min === undefined || every < min)) min = every;
  }
  return min;
}

// ---------------------------------------------------------------------------------------------
// install

export type InstallTarget = 'crontab' | 'systemd' | 'kubernetes';

export interface InstallOptions {
  target: InstallTarget;
  /** Absolute path of the configuration file the scheduler passes to --config. */
  configFile: string;
  /** How to start lifeboat: absolute argv, e.g. [node, /opt/lifeboat/bin/lifeboat]. */
  command: string[];
  /** Container image (kubernetes). */
  image?: string;
  /** Namespace (kubernetes). */
  namespace?: string;
}

export interface GeneratedFile {
  name: string;
  content: string;
}

const HEADER = `Generated by \`lifeboat schedule install\` (lifeboat ${VERSION}).`;
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Every `env:NAME` (and other secret references) the configuration uses, by kind. */
export function secretReferences(config: LifeboatConfig): {
  env: string[];
  files: string[];
  commands: string[];
} {
  const found: SecretRef[] = [];
  const walk = (value: unknown) => {
    if (isSecretRef(value)) found.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(config);
  const uniq = (xs: string[]) => [...new Set(xs)].sort();
  return {
    env: uniq(found.flatMap((r) => (r.kind === 'env' ? [r.name] : []))),
    files: uniq(found.flatMap((r) => (r.kind === 'file' ? [r.path] : []))),
    commands: uniq(found.flatMap((r) => (r.kind === 'command' ? [r.text] : []))),
  };
}

/** Quote an argument for a POSIX shell (crontab lines run through /bin/sh). */
function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Quote an argument for systemd's ExecStart (specifiers start with %, so it is doubled). */
function systemdQuote(arg: string): string {
  const escaped = arg.replace(/%/g, '%%');
  return /^[A-Za-z0-9_@+=:,./-]+$/.test(escaped) ? escaped : `"${escaped.replace(/(["\\])/g, '\\$1')}"`;
}

function runArgv(opts: InstallOptions): string[] {
  return [...opts.command, '--config', opts.configFile, 'run', '--due'];
}

function pathWithNode(opts: InstallOptions): string {
  const nodeDir = opts.command[0] && opts.command[0].startsWith('/') ? dirname(opts.command[0]) : undefined;
  return nodeDir && !SYSTEM_PATH.split(':').includes(nodeDir) ? `${nodeDir}:${SYSTEM_PATH}` : SYSTEM_PATH;
}

/** Directories lifeboat writes to: state, scratch, file:// repositories, the metrics directory. */
function writablePaths(config: LifeboatConfig, env: NodeJS.ProcessEnv): string[] {
  const paths = [stateDir(config, env), config.defaults.scratchRoot];
  for (const repo of Object.values(config.repositories)) {
    if (repo.url.startsWith('file://')) paths.push(decodeURI(repo.url.slice('file://'.length)));
  }
  if (config.notifications?.prometheus) paths.push(config.notifications.prometheus.textfileDir);
  return [...new Set(paths.filter(Boolean))];
}

function crontabFiles(config: LifeboatConfig, opts: InstallOptions, env: NodeJS.ProcessEnv): GeneratedFile[] {
  const log = join(stateDir(config, env), 'cron.log');
  const refs = secretReferences(config);
  const lines = [
    `# ${HEADER}`,
    '# Install with `crontab -e` (as the user lifeboat runs as, usually root), or append:',
    '#   crontab -l | cat - lifeboat.crontab | crontab -',
    '# lifeboat decides what is due; cron only has to call it every five minutes. A call that',
    '# overlaps a running one exits at once.',
    ...(refs.env.length
      ? [
          `# The configuration reads ${refs.env.join(', ')} from the environment: set them below or`,
          '# use file: references instead.',
        ]
      : []),
    `PATH=${pathWithNode(opts)}`,
    ...refs.env.map((name) => `# ${name}=…`),
    `*/5 * * * * ${runArgv(opts).map(shellQuote).join(' ')} >> ${shellQuote(log)} 2>&1`,
    '',
  ];
  return [{ name: 'lifeboat.crontab', content: lines.join('\n') }];
}

function systemdFiles(config: LifeboatConfig, opts: InstallOptions, env: NodeJS.ProcessEnv): GeneratedFile[] {
  const refs = secretReferences(config);
  // Snapshot and image jobs create snapshots, mount them and read block devices: they need
  // the system writable and real devices, so those jobs get a lighter sandbox.
  const needsDevices = Object.values(config.jobs).some((j) => j.kind === 'snapshot' || j.kind === 'image');
  const hardening = needsDevices
    ? [
        '# Snapshot/image jobs mount snapshots and read devices, so the file system stays writable',
        '# apart from /usr, /boot and /etc.',
        'ProtectSystem=full',
      ]
    : [
        '# The whole file system is read-only for lifeboat (it can read every source) except the',
        '# directories it writes to; a missing one is skipped (the leading -).',
        'ProtectSystem=strict',
        `ReadWritePaths=${writablePaths(config, env)
          .map((p) => `-${systemdQuote(p)}`)
          .join(' ')}`,
        'PrivateDevices=yes',
        'RestrictNamespaces=yes',
      ];
  const service = [
    `# ${HEADER}`,
    '# Install: copy lifeboat.service and lifeboat.timer to /etc/systemd/system/, then',
    '#   systemctl daemon-reload && systemctl enable --now lifeboat.timer',
    '[Unit]',
    'Description=lifeboat: run due backups, drills and checks',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${runArgv(opts).map(systemdQuote).join(' ')}`,
    `Environment=PATH=${pathWithNode(opts)}`,
    ...(refs.env.length
      ? [
          `# Secrets referenced as env: in the configuration (${refs.env.join(', ')}), one NAME=value per line:`,
        ]
      : ['# Environment for secrets referenced as env:NAME, one NAME=value per line:']),
    'EnvironmentFile=-/etc/lifeboat/lifeboat.env',
    '# Backups are background work.',
    'Nice=10',
    'IOSchedulingClass=best-effort',
    'IOSchedulingPriority=7',
    '# Hardening that still lets lifeboat read everything it backs up (it runs as root to do so).',
    ...hardening,
    'ProtectHome=read-only',
    'PrivateTmp=yes',
    'NoNewPrivileges=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
    'UMask=0077',
    '',
  ];
  const timer = [
    `# ${HEADER}`,
    '[Unit]',
    'Description=lifeboat: check for due backups, drills and checks every five minutes',
    '',
    '[Timer]',
    'OnCalendar=*:0/5',
    '# Catch up after the machine was off; lifeboat then runs what was missed, once.',
    'Persistent=true',
    'AccuracySec=1s',
    'Unit=lifeboat.service',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ];
  return [
    { name: 'lifeboat.service', content: service.join('\n') },
    { name: 'lifeboat.timer', content: timer.join('\n') },
  ];
}

const CONTAINER_CONFIG_DIR = '/etc/lifeboat';
const CONTAINER_STATE_DIR = '/var/lib/lifeboat';

async function kubernetesFiles(config: LifeboatConfig, opts: InstallOptions): Promise<GeneratedFile[]> {
  const text = await readFile(opts.configFile, 'utf8');
  const raw = parseYaml(text) as { defaults?: { stateDir?: unknown } } | null;
  // In the container lifeboat runs as root, so without an explicit stateDir it uses /var/lib/lifeboat.
  const state = typeof raw?.defaults?.stateDir === 'string' ? raw.defaults.stateDir : CONTAINER_STATE_DIR;
  const refs = secretReferences(config);
  const namespace = opts.namespace ?? 'default';
  const labels = { 'app.kubernetes.io/name': 'lifeboat', 'app.kubernetes.io/managed-by': 'lifeboat' };
  const meta = (name: string) => ({ name, namespace, labels });
  const configMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta('lifeboat-config'),
    data: { 'lifeboat.yaml': text },
  };
  const pvc = {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta('lifeboat-state'),
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
  };
  const cronJob = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: meta('lifeboat'),
    spec: {
      schedule: '*/5 * * * *',
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 240,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 5,
      jobTemplate: {
        spec: {
          backoffLimit: 0,
          template: {
            metadata: { labels },
            spec: {
              restartPolicy: 'Never',
              containers: [
                {
                  name: 'lifeboat',
                  image: opts.image ?? `lifeboat:${VERSION}`,
                  args: ['--config', `${CONTAINER_CONFIG_DIR}/lifeboat.yaml`, 'run', '--due'],
                  env: refs.env.map((name) => ({
                    name,
                    valueFrom: { secretKeyRef: { name: 'lifeboat-secrets', key: name } },
                  })),
                  volumeMounts: [
                    { name: 'config', mountPath: CONTAINER_CONFIG_DIR, readOnly: true },
                    { name: 'state', mountPath: state },
                  ],
                },
              ],
              volumes: [
                { name: 'config', configMap: { name: 'lifeboat-config' } },
                { name: 'state', persistentVolumeClaim: { claimName: 'lifeboat-state' } },
              ],
            },
          },
        },
      },
    },
  };
  const fileRepos = Object.values(config.repositories).filter((r) => r.url.startsWith('file://'));
  const header = [
    HEADER,
    'Apply with `kubectl apply -f lifeboat-cronjob.yaml` after creating the secret:',
    refs.env.length
      ? `  kubectl -n ${namespace} create secret generic lifeboat-secrets ${refs.env.map((n) => `--from-literal=${n}=…`).join(' ')}`
      : `  kubectl -n ${namespace} create secret generic lifeboat-secrets   (no env: references in the configuration)`,
    'The CronJob never starts a run while one is still going (concurrencyPolicy: Forbid); lifeboat',
    'decides what is due. Mount the data to back up into the container as well.',
    ...(refs.files.length ? [`file: secrets to mount: ${refs.files.join(', ')}`] : []),
    ...(refs.commands.length ? ['command: secrets need their program inside the image'] : []),
    ...fileRepos.map((r) => `repository ${r.name} (${r.url}) is a local path: mount a volume there`),
  ]
    .map((l) => `# ${l}`)
    .join('\n');
  const docs = [configMap, pvc, cronJob].map((d) =>
    stringifyYaml(d, { lineWidth: 0, aliasDuplicateObjects: false }),
  );
  return [{ name: 'lifeboat-cronjob.yaml', content: `${header}\n${docs.join('---\n')}` }];
}

/** The files that make a scheduler call `lifeboat run --due` every five minutes. */
export async function scheduleFiles(
  config: LifeboatConfig,
  opts: InstallOptions,
  env: NodeJS.ProcessEnv,
): Promise<GeneratedFile[]> {
  if (!opts.configFile.startsWith('/')) {
    throw new UsageError(`the configuration path ${opts.configFile} is not absolute`, {
      hint: 'schedulers start lifeboat elsewhere; pass --config with an absolute path',
    });
  }
  switch (opts.target) {
    case 'crontab':
      return crontabFiles(config, opts, env);
    case 'systemd':
      return systemdFiles(config, opts, env);
    case 'kubernetes':
      return kubernetesFiles(config, opts);
  }
}

/** Write the files into `dir`; refuses to replace an existing file unless `force`. */
export async function writeScheduleFiles(
  files: GeneratedFile[],
  dir: string,
  force: boolean,
): Promise<string[]> {
  const paths = files.map((f) => join(dir, f.name));
  if (!force) {
    for (const path of paths) {
      const exists = await access(path).then(
        () => true,
        () => false,
      );
      if (exists) {
        throw new UsageError(`${path} already exists`, {
          hint: 'pass --force to replace it, or choose another --out',
        });
      }
    }
  }
  await mkdir(dir, { recursive: true });
  for (const [i, f] of files.entries()) {
    // Without --force, exclusive: a file that appeared since the check is still not replaced.
    await writeFileAtomic(paths[i]!, f.content, { mode: 0o644, exclusive: !force });
  }
  return paths;
}

/**
 * The commented starter configuration `lifeboat init` writes. It is valid as written (a test
 * loads it), backs up one directory into a local repository, and shows the other sections as
 * comments to uncomment.
 */
import { join } from 'node:path';
import { UsageError, isErrnoException } from '../errors.js';
import { writeFileAtomic } from '../platform/atomicWrite.js';
import { configPath } from './load.js';
import { defaultStateDir, machineFacts, type MachineFacts } from './resolve.js';

export interface StarterOptions {
  /** The state directory; the repository goes to <stateDir>/repository. */
  stateDir: string;
  /** The directory the example job backs up. */
  backupPath: string;
}

/** Quote a scalar for YAML if it needs it. */
function yamlText(value: string): string {
  return /^[A-Za-z0-9_./:@-]+$/.test(value) && !/^[-:@]/.test(value) ? value : JSON.stringify(value);
}

/** The starter lifeboat.yaml text. */
export function starterConfig(options: StarterOptions): string {
  const repository = `file://${join(options.stateDir, 'repository')}`;
  return `# lifeboat configuration — every key is described in docs/configuration.md.
# Check it with \`lifeboat config validate\`; \`lifeboat config schema\` prints a JSON Schema
# for editors. Durations: 90s 15m 1h 7d 2w (1h30m). Sizes: 512KiB 16MiB 1GiB.
# Secrets are references: env:NAME, file:/path (mode 0600) or command:program args…
version: 1

defaults:
  # Local caches and drill leftovers (losing them costs speed, never data).
  stateDir: ${yamlText(options.stateDir)}
  # Compliance reports look back this far for evidence.
  reportWindow: 30d
  # timezone: Europe/Berlin        # schedules use the system time zone unless set

repositories:
  # Where restore points are kept: encrypted and deduplicated. A repository on the same disk
  # protects against mistakes, not against losing the disk: add an offsite one (below).
  local:
    url: ${yamlText(repository)}
    password: env:LIFEBOAT_PASSWORD   # export it before running lifeboat; keep a copy elsewhere!
  # offsite:
  #   url: s3://my-bucket/lifeboat
  #   password: file:/etc/lifeboat/offsite.password
  #   offsite: true
  #   s3: { region: eu-west-1, accessKeyId: env:AWS_ACCESS_KEY_ID, secretAccessKey: env:AWS_SECRET_ACCESS_KEY }

policies:
  # Targets a job is judged against in reports.
  standard:
    rpo: 2h          # at most this much data may be lost (the schedule below must keep up)
    rto: 1h          # a restore must finish within this; measured by drills
    retention: { last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12 }
    drill: { every: 7d }              # prove a restore works once a week
    check: { every: 7d, readData: 5% }
    # copies: 2      # restore points in at least 2 repositories
    # offsite: 1     # of which 1 offsite

jobs:
  files:
    kind: files
    paths: [${yamlText(options.backupPath)}]
    exclude: ['*.tmp', '.cache/']
    schedule: '15 * * * *'            # hourly at :15 (cron: minute hour day month weekday)
    policy: standard
  # db:
  #   kind: postgres
  #   connection: { dsn: env:PG_DSN }  # or host/port/user/password
  #   databases: all
  #   schedule: '*/30 * * * *'
  #   policy: standard
  #   drill:
  #     assertions:
  #       - sql: select count(*) > 0 from orders
  #         database: shop

# notifications:
#   webhooks: [{ url: env:LIFEBOAT_WEBHOOK, events: [failure, breach] }]
#   healthchecks: { url: env:HEALTHCHECKS_URL }
`;
}

export interface WriteStarterOptions {
  /** The --config flag value. */
  path?: string | undefined;
  env: NodeJS.ProcessEnv;
  cwd: string;
  machine?: MachineFacts;
}

/**
 * Write the starter configuration where lifeboat will look for it (--config, $LIFEBOAT_CONFIG
 * or ./lifeboat.yaml), mode 0600. Never overwrites: an existing file is a usage error.
 */
export async function writeStarterConfig(
  options: WriteStarterOptions,
): Promise<{ file: string; stateDir: string }> {
  const { file } = configPath(options);
  const machine = options.machine ?? machineFacts(options.env);
  const stateDir = defaultStateDir(machine);
  // root backs up /etc as a harmless example; a user their home directory.
  const backupPath = machine.uid === 0 ? '/etc' : machine.homedir;
  try {
    await writeFileAtomic(file, starterConfig({ stateDir, backupPath }), { mode: 0o600, exclusive: true });
  } catch (err) {
    const code = isErrnoException(err) ? err.code : undefined;
    if (code === 'EEXIST') {
      throw new UsageError(`${file} already exists; lifeboat init never overwrites a configuration`, {
        hint: 'edit it and check it with `lifeboat config validate`, or write a new one with --config other.yaml',
      });
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      throw new UsageError(
        `cannot write ${file}: ${code === 'EROFS' ? 'read-only file system' : 'permission denied'}`,
        {
          hint: 'choose a writable place with --config /path/lifeboat.yaml',
          cause: err,
        },
      );
    }
    throw err;
  }
  return { file, stateDir };
}

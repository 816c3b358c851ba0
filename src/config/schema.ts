/**
 * The schema of lifeboat.yaml: the single source of the configuration's TypeScript types, of
 * the JSON Schema (`lifeboat config schema`) and of docs/configuration.md. Objects are strict
 * (unknown keys are errors), durations and sizes are parsed to numbers, secrets to references.
 *
 * Defaults that depend on the machine (state directory, host name, time zone) and on other
 * parts of the file (a job's repositories, its policy) are filled in by resolve.ts; the types
 * exported at the bottom describe the resolved configuration the rest of lifeboat uses.
 */
import { z } from 'zod';
import { readDuration } from '../policy/duration.js';
import { checkSchedule, type Schedule } from '../policy/schedule.js';
import { readSize } from '../policy/size.js';
import { canonicalTimeZone, knownTimeZones } from '../policy/timeZone.js';
import { closest } from './didYouMean.js';
import { readSecretRef, type SecretRef } from './secretRef.js';

/** Names of repositories, policies and jobs. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const NAME_RULE = 'letters, digits, ".", "_" and "-", starting with a letter or digit';

type Ctx = z.core.$RefinementCtx;

/** Report a problem with a hint (the hint travels in params and becomes ConfigIssue.hint). */
function addIssue(ctx: Ctx, message: string, hint?: string, path?: PropertyKey[]): void {
  ctx.addIssue({ code: 'custom', message, ...(hint ? { params: { hint } } : {}), ...(path ? { path } : {}) });
}

/**
 * Special value schemas get a hand-written JSON Schema (zod cannot see through transforms);
 * jsonSchema.ts applies these.
 */
export const jsonSchemaOverrides = new Map<z.ZodType, Record<string, unknown>>();

function withJsonSchema<T extends z.ZodType>(schema: T, json: Record<string, unknown>): T {
  jsonSchemaOverrides.set(schema, json);
  return schema;
}

const DURATION_PATTERN = '^\\s*(\\d+\\s*(ms|s|m|h|d|w)\\s*)+$';

/** A duration text (`90s`, `1h30m`, `7d`) parsed to milliseconds. */
export function duration(options: { min?: number; max?: number } = {}) {
  return withJsonSchema(
    z
      .union([z.string(), z.number()], { error: 'expected a duration such as 15m, 1h or 7d' })
      .transform((v, ctx) => {
        const r = readDuration(v);
        if (!r.ok) {
          addIssue(ctx, r.message, r.hint);
          return z.NEVER;
        }
        if (options.min !== undefined && r.ms < options.min) {
          addIssue(ctx, `"${String(v)}" is too short`, `the minimum is ${minimumText(options.min)}`);
          return z.NEVER;
        }
        if (options.max !== undefined && r.ms > options.max) {
          addIssue(ctx, `"${String(v)}" is too long`, `the maximum is ${minimumText(options.max)}`);
          return z.NEVER;
        }
        return r.ms;
      }),
    { type: 'string', pattern: DURATION_PATTERN, examples: ['90s', '15m', '1h30m', '7d', '2w'] },
  );
}

function minimumText(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** A size (`16MiB`, `2G`, plain bytes) parsed to bytes. */
export function size(options: { min?: number; max?: number; powerOfTwo?: boolean } = {}) {
  return withJsonSchema(
    z.union([z.string(), z.number()], { error: 'expected a size such as 16MiB' }).transform((v, ctx) => {
      const r = readSize(v);
      if (!r.ok) {
        addIssue(ctx, r.message, r.hint);
        return z.NEVER;
      }
      if (options.min !== undefined && r.bytes < options.min) {
        addIssue(ctx, `${String(v)} is too small`, `the minimum is ${sizeText(options.min)}`);
        return z.NEVER;
      }
      if (options.max !== undefined && r.bytes > options.max) {
        addIssue(ctx, `${String(v)} is too large`, `the maximum is ${sizeText(options.max)}`);
        return z.NEVER;
      }
      if (options.powerOfTwo && (r.bytes & (r.bytes - 1)) !== 0) {
        addIssue(ctx, `${String(v)} is not a power of two`, 'e.g. 1MiB, 4MiB, 16MiB');
        return z.NEVER;
      }
      return r.bytes;
    }),
    {
      anyOf: [
        { type: 'integer', minimum: 0, description: 'bytes' },
        { type: 'string', pattern: '^\\d+(\\.\\d+)?\\s*([kKmMgGtTpP](i?[bB])?|[bB])?$' },
      ],
      examples: ['512KiB', '16MiB', '1GiB', '2G'],
    },
  );
}

function sizeText(bytes: number): string {
  for (const [unit, n] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes} bytes`;
}

/** A secret: env:NAME, file:/path, command:argv…, literal:text or a bare literal. */
export function secret() {
  return withJsonSchema(
    z.string({ error: 'expected a secret reference such as env:NAME' }).transform((v, ctx): SecretRef => {
      const r = readSecretRef(v);
      if (!r.ok) {
        addIssue(ctx, r.message, r.hint);
        return z.NEVER;
      }
      return r.ref;
    }),
    {
      type: 'string',
      description:
        'secret reference: env:NAME, file:/path (mode 0600), command:program args… (stdout), ' +
        'literal:text, or the value itself (warned about in a world-readable file)',
      examples: ['env:LIFEBOAT_PASSWORD', 'file:/etc/lifeboat/password', 'command:pass show lifeboat'],
    },
  );
}

const absolutePath = z.string({ error: 'expected an absolute path' }).check((ctx) => {
  const v = ctx.value;
  if (v.startsWith('~')) {
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: `"${v}": ~ is not expanded`,
      params: { hint: 'write the full path, e.g. /home/you/…' },
    });
  } else if (!v.startsWith('/')) {
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: `"${v}" is not an absolute path`,
      params: { hint: 'paths in lifeboat.yaml start with /' },
    });
  }
});

const nonEmpty = (what: string) => z.string().min(1, { error: `${what} must not be empty` });

const nameRef = z.string().regex(NAME_PATTERN, { error: `expected a name (${NAME_RULE})` });

function timeZoneHint(name: string): string {
  const near = closest(name, knownTimeZones());
  return near
    ? `did you mean \`${near}\`?`
    : 'use an IANA name such as UTC, Europe/Berlin or America/New_York';
}

/** An IANA time zone, normalised to its canonical spelling. */
const timeZone = z.string().transform((v, ctx) => {
  const canonical = canonicalTimeZone(v);
  if (!canonical) {
    addIssue(ctx, `unknown time zone "${v}"`, timeZoneHint(v));
    return z.NEVER;
  }
  return canonical;
});

// ---------------------------------------------------------------------------------------------
// defaults

export const defaultsSchema = z
  .strictObject({
    stateDir: absolutePath.optional().meta({
      description:
        'local state (caches, drill leftovers); default $XDG_STATE_HOME/lifeboat or ~/.local/state/lifeboat, /var/lib/lifeboat for root',
    }),
    scratchRoot: absolutePath
      .optional()
      .meta({ description: 'where drills restore; default <stateDir>/scratch' }),
    host: nonEmpty('host')
      .optional()
      .meta({ description: 'host name recorded in snapshots; default: the system host name' }),
    timezone: timeZone
      .optional()
      .meta({ description: 'time zone of schedules; default: the system time zone (TZ)' }),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(2)
      .meta({ description: 'jobs run at once by `run --due`' }),
    reportWindow: duration({ min: 86_400_000 })
      .prefault('30d')
      .meta({ description: 'evidence window of compliance reports' }),
  })
  .meta({ description: 'settings shared by all jobs' });

// ---------------------------------------------------------------------------------------------
// repositories

const S3_BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

const repositoryUrl = z
  .string({ error: 'expected a repository URL such as file:///var/backups/lifeboat' })
  .check((ctx) => {
    const problem = repositoryUrlProblem(ctx.value);
    if (problem)
      ctx.issues.push({
        code: 'custom',
        input: ctx.value,
        message: problem.message,
        params: { hint: problem.hint },
      });
  });

function repositoryUrlProblem(url: string): { message: string; hint: string } | undefined {
  const scheme = /^([a-z0-9+.-]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  const examples = 'file:///var/backups/lifeboat, s3://bucket/prefix or memory://name';
  if (!scheme) {
    if (url.startsWith('/')) return { message: `"${url}" is a path, not a URL`, hint: `write file://${url}` };
    return { message: `"${url}" is not a repository URL`, hint: `use ${examples}` };
  }
  if (scheme === 'file') {
    const path = url.slice('file://'.length);
    if (!path.startsWith('/')) {
      return {
        message: `"${url}" has no absolute path`,
        hint: `file URLs have three slashes: file:///${path}`,
      };
    }
    return undefined;
  }
  if (scheme === 's3') {
    const bucket = url.slice('s3://'.length).split('/')[0] ?? '';
    if (!S3_BUCKET.test(bucket)) {
      return {
        message: `"${bucket}" is not a valid S3 bucket name`,
        hint: 'bucket names are 3–63 characters: lowercase letters, digits, "." and "-"',
      };
    }
    return undefined;
  }
  if (scheme === 'memory') return undefined;
  return { message: `unsupported repository scheme "${scheme}://"`, hint: `use ${examples}` };
}

export const s3Schema = z
  .strictObject({
    region: nonEmpty('region')
      .optional()
      .meta({ description: 'AWS region; default from the AWS environment' }),
    endpoint: z
      .url({ error: 'expected a URL such as http://127.0.0.1:9000' })
      .optional()
      .meta({ description: 'S3-compatible endpoint (MinIO, Garage, …)' }),
    forcePathStyle: z.boolean().optional().meta({
      description:
        'path-style URLs (needed by most S3-compatible servers); default: true when endpoint is set',
    }),
    accessKeyId: secret().optional(),
    secretAccessKey: secret().optional(),
    objectLockMode: z
      .enum(['COMPLIANCE', 'GOVERNANCE'], { error: 'expected COMPLIANCE or GOVERNANCE' })
      .optional()
      .meta({
        description:
          'Object Lock mode of immutable restore points (policy immutableFor); default COMPLIANCE: nobody can shorten it',
      }),
  })
  .superRefine((s3, ctx) => {
    if ((s3.accessKeyId === undefined) !== (s3.secretAccessKey === undefined)) {
      const missing = s3.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey';
      addIssue(
        ctx,
        `${missing} is missing`,
        'give both accessKeyId and secretAccessKey, or neither (AWS environment)',
        [missing],
      );
    }
  })
  .meta({ description: 'S3 settings for s3:// repositories' });

export const repositorySchema = z
  .strictObject({
    url: repositoryUrl.meta({ description: 'file:///path, s3://bucket/prefix or memory://name (tests)' }),
    password: secret(),
    offsite: z.boolean().default(false).meta({ description: 'counts towards a policy’s offsite copies' }),
    packSize: size({ min: 2 ** 20, max: 2 ** 30 })
      .prefault('16MiB')
      .meta({ description: 'target size of pack files' }),
    s3: s3Schema.optional(),
  })
  .meta({ description: 'where restore points are stored (encrypted, deduplicated)' });

// ---------------------------------------------------------------------------------------------
// policies

const count = (what: string) =>
  z
    .number({ error: `expected a whole number of ${what}` })
    .int()
    .min(0);

export const retentionSchema = z
  .strictObject({
    last: count('snapshots').optional().meta({ description: 'keep the newest N' }),
    hourly: count('hours').optional(),
    daily: count('days').optional(),
    weekly: count('weeks').optional(),
    monthly: count('months').optional(),
    yearly: count('years').optional(),
    within: duration().optional().meta({ description: 'keep everything newer than this' }),
  })
  .superRefine((r, ctx) => {
    const keeps = [r.last, r.hourly, r.daily, r.weekly, r.monthly, r.yearly].some((n) => (n ?? 0) > 0);
    if (!keeps && !(r.within && r.within > 0)) {
      addIssue(
        ctx,
        'this retention keeps nothing: prune would delete every snapshot',
        'set at least one of last, hourly, daily, weekly, monthly, yearly above 0, or within; omit retention to keep everything',
      );
    }
  })
  .meta({ description: 'which snapshots prune keeps; without it prune keeps everything' });

const readData = z
  .union([z.boolean(), z.string()], { error: 'expected true, false or a percentage such as "10%"' })
  .transform((v, ctx) => {
    if (typeof v === 'boolean') return v ? 1 : 0;
    const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(v.trim());
    const pct = m ? Number(m[1]) : NaN;
    if (!(pct > 0 && pct <= 100)) {
      addIssue(
        ctx,
        `"${v}" is not a percentage between 0 and 100`,
        'e.g. "10%"; true reads everything, false nothing',
      );
      return z.NEVER;
    }
    return pct / 100;
  });
jsonSchemaOverrides.set(readData, {
  anyOf: [{ type: 'boolean' }, { type: 'string', pattern: '^\\d+(\\.\\d+)?\\s*%$' }],
  description: 'share of pack data to read and verify: false, true or "10%"',
});

export const policyDrillSchema = z
  .strictObject({
    every: duration({ min: 3_600_000 }).meta({ description: 'a successful drill is required this often' }),
    snapshot: z
      .enum(['latest', 'random'])
      .default('latest')
      .meta({ description: 'which restore point a drill restores' }),
    window: duration()
      .optional()
      .meta({ description: 'random picks from snapshots this new; default defaults.reportWindow' }),
    provisioningCounts: z
      .boolean()
      .default(false)
      .meta({ description: 'count scratch-environment set-up time towards the measured RTO' }),
  })
  .meta({ description: 'restore drills that prove the RTO' });

export const checkSchema = z
  .strictObject({
    every: duration({ min: 3_600_000 }).meta({ description: 'an integrity check is required this often' }),
    readData: readData.prefault(false),
  })
  .meta({ description: 'repository integrity checks' });

export const policySchema = z
  .strictObject({
    rpo: duration({ min: 60_000 }).meta({
      description: 'recovery point objective: the most data you may lose',
    }),
    rto: duration({ min: 1000 })
      .optional()
      .meta({ description: 'recovery time objective, judged from drills' }),
    retention: retentionSchema.optional(),
    drill: policyDrillSchema.optional(),
    copies: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(1)
      .meta({ description: 'restore points in at least N repositories' }),
    offsite: z.number().int().min(0).max(16).default(0).meta({ description: 'of which at least N offsite' }),
    immutableFor: duration()
      .optional()
      .meta({ description: 'objects must stay undeletable this long (S3 object lock)' }),
    check: checkSchema.optional(),
  })
  .superRefine((p, ctx) => {
    if (p.offsite > p.copies) {
      addIssue(
        ctx,
        `offsite ${p.offsite} is more than copies ${p.copies}`,
        'offsite copies are counted among the copies; raise copies or lower offsite',
        ['offsite'],
      );
    }
  })
  .meta({ description: 'recovery targets a job is judged against' });

// ---------------------------------------------------------------------------------------------
// jobs

const scheduleObject = z.strictObject({
  cron: z.string({ error: 'expected a cron expression such as "0 * * * *"' }),
  timezone: z.string().optional().meta({ description: 'IANA time zone; default defaults.timezone' }),
});

/** `"0 * * * *"` or `{ cron, timezone }`; timezone is filled in by resolve.ts when absent. */
const scheduleSchema = z
  .union([z.string(), scheduleObject], { error: 'expected a cron expression such as "0 * * * *"' })
  .transform((v, ctx): { cron: string; timezone?: string } => {
    const form = typeof v === 'string' ? { cron: v } : v;
    const inObject = typeof v !== 'string';
    let timezone: string | undefined;
    if (form.timezone !== undefined) {
      timezone = canonicalTimeZone(form.timezone);
      if (!timezone) {
        addIssue(ctx, `unknown time zone "${form.timezone}"`, timeZoneHint(form.timezone), ['timezone']);
        return z.NEVER;
      }
    }
    const check = checkSchedule(form.cron, timezone ?? 'UTC');
    if (!check.ok) {
      addIssue(ctx, check.message, check.hint, inObject ? ['cron'] : undefined);
      return z.NEVER;
    }
    return timezone ? { cron: check.schedule.cron, timezone } : { cron: check.schedule.cron };
  });
jsonSchemaOverrides.set(scheduleSchema, {
  anyOf: [
    { type: 'string', description: '5-field cron expression or @hourly/@daily/@weekly/@monthly/@yearly' },
    {
      type: 'object',
      properties: { cron: { type: 'string' }, timezone: { type: 'string', description: 'IANA time zone' } },
      required: ['cron'],
      additionalProperties: false,
    },
  ],
  examples: ['0 * * * *', '*/30 * * * *', { cron: '0 3 * * *', timezone: 'Europe/Berlin' }],
});

const argv = z
  .array(z.string(), { error: 'expected a command as a list, e.g. ["test", "-f", "index.html"]' })
  .min(1, { error: 'the command is empty' });

const assertionSchema = z
  .strictObject({
    sql: nonEmpty('sql')
      .optional()
      .meta({ description: 'query whose first value must equal expect (database jobs)' }),
    database: nonEmpty('database').optional().meta({ description: 'database the query runs in' }),
    expect: z
      .union([z.boolean(), z.number(), z.string()], { error: 'expected true/false, a number or a text' })
      .optional()
      .meta({ description: 'expected first value of the query; default true' }),
    command: argv.optional().meta({ description: 'argv run in the restored data; exit 0 passes' }),
    timeout: duration({ min: 1000 }).optional().meta({ description: 'per assertion; default 5m' }),
  })
  .superRefine((a, ctx) => {
    if ((a.sql === undefined) === (a.command === undefined)) {
      addIssue(
        ctx,
        a.sql === undefined
          ? 'an assertion needs sql or command'
          : 'an assertion has either sql or command, not both',
        'e.g. { sql: "select count(*) > 0 from orders" } or { command: ["test", "-f", "index.html"] }',
      );
    }
    if (a.command !== undefined) {
      for (const key of ['database', 'expect'] as const) {
        if (a[key] !== undefined) addIssue(ctx, `${key} only applies to sql assertions`, undefined, [key]);
      }
    }
  })
  .transform((a) =>
    a.command !== undefined
      ? { type: 'command' as const, command: a.command, timeout: a.timeout ?? 300_000 }
      : {
          type: 'sql' as const,
          sql: a.sql!,
          database: a.database,
          expect: a.expect ?? true,
          timeout: a.timeout ?? 300_000,
        },
  );

export const jobDrillSchema = z
  .strictObject({
    scratch: z
      .enum(['ephemeral', 'existing'])
      .default('ephemeral')
      .meta({ description: 'databases: a throwaway server, or a scratch database on `server`' }),
    server: secret().optional().meta({ description: 'DSN of the server for scratch: existing' }),
    assertions: z.array(assertionSchema).default([]),
    timeout: duration({ min: 1000 })
      .prefault('1h')
      .meta({ description: 'the whole drill must finish within this' }),
  })
  .superRefine((d, ctx) => {
    if (d.scratch === 'existing' && d.server === undefined) {
      addIssue(
        ctx,
        'scratch: existing needs a server',
        'add server: env:DRILL_DSN (a DSN of a server lifeboat may create databases on)',
        ['server'],
      );
    }
  })
  .meta({ description: 'per-job restore-drill settings' });

export const WEBHOOK_EVENTS = ['failure', 'breach', 'success'] as const;

const webhooksSchema = z
  .array(
    z.strictObject({
      url: secret().meta({
        description: 'URL to POST a JSON event to (a reference if it holds a token)',
      }),
      events: z
        .array(z.enum(WEBHOOK_EVENTS))
        .min(1)
        .default(['failure', 'breach'])
        .meta({ description: 'failure, breach, success' }),
      timeout: duration({ min: 1000 }).prefault('10s'),
    }),
  )
  .default([]);

const healthchecksSchema = z
  .strictObject({
    url: secret().meta({ description: 'ping URL (healthchecks.io style: /start, /fail)' }),
  })
  .optional();

export const jobNotificationsSchema = z
  .strictObject({ webhooks: webhooksSchema, healthchecks: healthchecksSchema })
  .meta({ description: "this job's own webhooks and healthchecks check, in addition to the global ones" });

const jobCommon = {
  schedule: scheduleSchema.optional(),
  policy: nameRef.optional().meta({ description: 'policy name; default: the only policy, if there is one' }),
  repositories: z
    .array(nameRef)
    .min(1, { error: 'list at least one repository, or leave repositories out to use all' })
    .optional()
    .meta({ description: 'repository names; default: every repository, in order' }),
  tags: z.array(nonEmpty('tag')).default([]),
  dependsOn: z
    .array(nameRef)
    .default([])
    .meta({ description: 'jobs to restore before this one (runbook order)' }),
  drill: jobDrillSchema.optional(),
  notifications: jobNotificationsSchema.optional(),
};

const globList = z.array(nonEmpty('pattern')).default([]);

export const filesJobSchema = z
  .strictObject({
    kind: z.literal('files'),
    paths: z.array(absolutePath).min(1, { error: 'list at least one path to back up' }),
    include: globList.meta({ description: 'gitignore-style patterns; when set, only matches are saved' }),
    exclude: globList.meta({ description: 'gitignore-style patterns to skip' }),
    oneFileSystem: z.boolean().default(false).meta({ description: 'do not cross mount points' }),
    xattrs: z.boolean().default(false).meta({ description: 'save extended attributes' }),
    ...jobCommon,
  })
  .meta({ description: 'files and directories' });

const databases = z
  .union([z.literal('all'), z.array(nonEmpty('database name')).min(1)], {
    error: 'expected "all" or a list of database names',
  })
  .default('all');

const port = z.number().int().min(1).max(65535);

const pgConnection = z
  .strictObject({
    dsn: secret().optional().meta({ description: 'postgres://… URL or libpq key=value string' }),
    host: nonEmpty('host').optional(),
    port: port.optional(),
    user: nonEmpty('user').optional(),
    password: secret().optional(),
    sslmode: z.enum(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']).optional(),
    socketDir: absolutePath.optional(),
    database: nonEmpty('database').optional().meta({ description: 'database to connect to for listing' }),
  })
  .superRefine((c, ctx) => dsnExclusive(c, ctx))
  .meta({ description: 'how to reach the server: dsn, or the separate fields (default: local socket)' });

const mysqlConnection = z
  .strictObject({
    dsn: secret().optional().meta({ description: 'mysql://user:password@host:port/' }),
    host: nonEmpty('host').optional(),
    port: port.optional(),
    user: nonEmpty('user').optional(),
    password: secret().optional(),
    socket: absolutePath.optional(),
    database: nonEmpty('database').optional(),
  })
  .superRefine((c, ctx) => {
    dsnExclusive(c, ctx);
    if (c.socket !== undefined && (c.host !== undefined || c.port !== undefined)) {
      addIssue(
        ctx,
        'socket and host/port exclude each other',
        'connect either through the socket or over TCP',
        ['socket'],
      );
    }
  })
  .meta({ description: 'how to reach the server: dsn, or the separate fields' });

function dsnExclusive(c: Record<string, unknown>, ctx: Ctx): void {
  if (c.dsn === undefined) return;
  for (const key of Object.keys(c)) {
    if (key !== 'dsn' && c[key] !== undefined) {
      addIssue(
        ctx,
        `${key} cannot be combined with dsn`,
        'put everything in the DSN, or drop dsn and use the fields',
        [key],
      );
    }
  }
}

export const postgresJobSchema = z
  .strictObject({
    kind: z.literal('postgres'),
    connection: pgConnection.prefault({}),
    databases: databases.meta({ description: '"all" or a list of database names' }),
    globals: z
      .boolean()
      .default(true)
      .meta({ description: 'also dump roles and tablespaces (pg_dumpall --globals-only)' }),
    checksums: z
      .boolean()
      .default(true)
      .meta({ description: 'per-table content checksums in the fingerprint' }),
    ...jobCommon,
  })
  .meta({ description: 'PostgreSQL databases (pg_dump)' });

export const mysqlJobSchema = z
  .strictObject({
    kind: z.literal('mysql'),
    connection: mysqlConnection.prefault({}),
    databases: databases.meta({ description: '"all" or a list of database names' }),
    usersAndGrants: z.boolean().default(false).meta({ description: 'also dump users and grants' }),
    checksums: z
      .boolean()
      .default(true)
      .meta({ description: 'per-table content checksums in the fingerprint' }),
    ...jobCommon,
  })
  .meta({ description: 'MySQL / MariaDB databases (mysqldump)' });

const relativePath = z.string().check((ctx) => {
  const v = ctx.value;
  if (v.startsWith('/') || v.split('/').includes('..') || v === '') {
    ctx.issues.push({
      code: 'custom',
      input: v,
      message: `"${v}" must be a path inside the snapshot`,
      params: { hint: 'write it relative to the snapshot root, without leading / or ..' },
    });
  }
});

export const snapshotJobSchema = z
  .strictObject({
    kind: z.literal('snapshot'),
    provider: z.enum(['btrfs', 'lvm', 'zfs']),
    source: absolutePath.optional().meta({ description: 'btrfs: the subvolume to snapshot' }),
    lvm: z
      .strictObject({
        volumeGroup: nonEmpty('volumeGroup'),
        logicalVolume: nonEmpty('logicalVolume'),
        snapshotSize: size({ min: 2 ** 20 }).meta({
          description: 'copy-on-write space for the snapshot, e.g. 2G',
        }),
      })
      .optional()
      .meta({ description: 'for provider lvm' }),
    zfs: z
      .strictObject({ dataset: nonEmpty('dataset') })
      .optional()
      .meta({ description: 'for provider zfs' }),
    paths: z
      .array(relativePath)
      .default([])
      .meta({ description: 'sub-paths inside the snapshot; default all' }),
    exclude: globList,
    quiesce: z
      .strictObject({
        before: z.array(argv).default([]).meta({ description: 'commands run before the snapshot' }),
        after: z.array(argv).default([]).meta({ description: 'commands run after it (also on failure)' }),
        fsfreeze: z
          .boolean()
          .default(false)
          .meta({ description: 'fsfreeze the file system around the snapshot' }),
        database: nameRef
          .optional()
          .meta({ description: 'a postgres/mysql job whose server is put in backup mode' }),
      })
      .optional(),
    keepLocal: z.number().int().min(0).default(0).meta({ description: 'local snapshots kept after upload' }),
    ...jobCommon,
  })
  .meta({ description: 'a consistent file-system snapshot (btrfs, LVM, ZFS), then backed up as files' });

export const imageJobSchema = z
  .strictObject({
    kind: z.literal('image'),
    device: absolutePath.meta({ description: 'block device or image file' }),
    blockSize: size({ min: 64 * 2 ** 10, max: 64 * 2 ** 20, powerOfTwo: true })
      .prefault('4MiB')
      .meta({ description: 'fixed block size; all-zero blocks are not stored' }),
    ...jobCommon,
  })
  .meta({ description: 'a whole block device or disk image' });

export const JOB_KINDS = ['files', 'postgres', 'mysql', 'snapshot', 'image'] as const;

export const jobSchema = z.discriminatedUnion('kind', [
  filesJobSchema,
  postgresJobSchema,
  mysqlJobSchema,
  snapshotJobSchema,
  imageJobSchema,
]);

// ---------------------------------------------------------------------------------------------
// notifications

export const notificationsSchema = z
  .strictObject({
    webhooks: webhooksSchema,
    healthchecks: healthchecksSchema,
    prometheus: z
      .strictObject({
        textfileDir: absolutePath.meta({ description: 'node_exporter textfile collector directory' }),
      })
      .optional(),
  })
  .meta({ description: 'where lifeboat reports outcomes' });

// ---------------------------------------------------------------------------------------------
// the file

const named = <T extends z.ZodType>(value: T, what: string) =>
  z.record(z.string().regex(NAME_PATTERN, { error: `invalid ${what} name` }), value);

export const configSchema = z
  .strictObject({
    version: z
      .literal(1, { error: 'this lifeboat reads configuration version 1' })
      .default(1)
      .meta({ description: 'format version of this file' }),
    defaults: defaultsSchema.prefault({}),
    repositories: named(repositorySchema, 'repository')
      .check((ctx) => {
        if (Object.keys(ctx.value).length === 0) {
          ctx.issues.push({
            code: 'custom',
            input: ctx.value,
            message: 'no repositories defined',
            params: {
              hint: 'add one, e.g. local: { url: file:///var/backups/lifeboat, password: env:LIFEBOAT_PASSWORD }',
            },
          });
        }
      })
      .prefault({}),
    policies: named(policySchema, 'policy').default({}),
    jobs: named(jobSchema, 'job').default({}),
    notifications: notificationsSchema.prefault({}),
  })
  .meta({ title: 'lifeboat configuration', description: 'lifeboat.yaml — see docs/configuration.md' });

/** The schema's output before resolve.ts fills in machine- and file-dependent defaults. */
export type ParsedConfig = z.output<typeof configSchema>;
type ParsedJob = z.output<typeof jobSchema>;
type ParsedPolicy = z.output<typeof policySchema>;

// ---------------------------------------------------------------------------------------------
// Resolved types: what the rest of lifeboat works with. Durations are milliseconds, sizes bytes.

export type { Schedule, SecretRef };

export interface DefaultsConfig {
  stateDir: string;
  scratchRoot: string;
  host: string;
  timezone: string;
  concurrency: number;
  /** ms */
  reportWindow: number;
}

export type RepositoryConfig = z.output<typeof repositorySchema> & { name: string };
export type S3Config = z.output<typeof s3Schema>;
export type RetentionConfig = z.output<typeof retentionSchema>;
export type CheckConfig = z.output<typeof checkSchema>;
export type PolicyDrillConfig = Omit<z.output<typeof policyDrillSchema>, 'window'> & { window: number };
export type PolicyConfig = Omit<ParsedPolicy, 'drill'> & {
  name: string;
  drill: PolicyDrillConfig | undefined;
};
export type JobDrillConfig = z.output<typeof jobDrillSchema>;
export type DrillAssertion = JobDrillConfig['assertions'][number];

type Resolved<J> = J extends unknown
  ? Omit<J, 'schedule' | 'policy' | 'repositories'> & {
      name: string;
      /** undefined: the job runs only when started by hand. */
      schedule: Schedule | undefined;
      policy: string;
      repositories: string[];
    }
  : never;

export type JobConfig = Resolved<ParsedJob>;
export type JobKind = JobConfig['kind'];
export type FilesJob = Extract<JobConfig, { kind: 'files' }>;
export type PostgresJob = Extract<JobConfig, { kind: 'postgres' }>;
export type MysqlJob = Extract<JobConfig, { kind: 'mysql' }>;
export type SnapshotJob = Extract<JobConfig, { kind: 'snapshot' }>;
export type ImageJob = Extract<JobConfig, { kind: 'image' }>;
export type NotificationsConfig = z.output<typeof notificationsSchema>;

export interface LifeboatConfig {
  version: 1;
  defaults: DefaultsConfig;
  repositories: Record<string, RepositoryConfig>;
  policies: Record<string, PolicyConfig>;
  jobs: Record<string, JobConfig>;
  notifications: NotificationsConfig;
}

import { describe, expect, it } from 'vitest';
import { configJsonSchema } from '../../../src/config/jsonSchema.js';
import { configSchema, jobSchema, repositorySchema } from '../../../src/config/schema.js';
import { starterConfig } from '../../../src/config/starter.js';
import { BASE, parse, problemLines } from './helpers.js';

describe('configSchema', () => {
  it('parses durations and sizes to numbers and secrets to references', () => {
    const repo = repositorySchema.parse({ url: 'file:///b', password: 'env:PW', packSize: '8MiB' });
    expect(repo).toEqual({
      url: 'file:///b',
      password: { kind: 'env', name: 'PW' },
      offsite: false,
      packSize: 8 * 2 ** 20,
    });
    const job = jobSchema.parse({ kind: 'image', device: '/dev/vdb' });
    expect(job).toMatchObject({ kind: 'image', blockSize: 4 * 2 ** 20, tags: [], dependsOn: [] });
  });

  it('checks sizes against their limits', () => {
    expect(
      problemLines(
        BASE.replace('    password: env:LIFEBOAT_PASSWORD', '    password: env:P\n    packSize: 3G'),
      ),
    ).toEqual(['5:15 repositories.local.packSize: 3G is too large — the maximum is 1GiB']);
    const image = BASE + '  disk: { kind: image, device: /dev/vdb, blockSize: 3MiB }\n';
    expect(problemLines(image)[0]).toContain('jobs.disk.blockSize: 3MiB is not a power of two');
  });

  it('reads check.readData as a share', () => {
    const policy = (readData: string) =>
      parse(BASE.replace('    rpo: 1h', `    rpo: 1h\n    check: { every: 7d, readData: ${readData} }`))
        .config.policies.standard!.check!.readData;
    expect(policy('true')).toBe(1);
    expect(policy('false')).toBe(0);
    expect(policy('"2.5%"')).toBe(0.025);
    expect(() => policy('"150%"')).toThrow();
  });

  it('postgres connections are a DSN or fields, not both', () => {
    const text =
      BASE + '  db: { kind: postgres, schedule: "0 * * * *", connection: { dsn: env:DSN, host: db1 } }\n';
    expect(problemLines(text)[0]).toContain('jobs.db.connection.host: host cannot be combined with dsn');
  });

  it('drill assertions are sql or command', () => {
    const text = BASE + '    drill: { assertions: [{ timeout: 5s }] }\n';
    expect(problemLines(text)[0]).toContain(
      'jobs.web.drill.assertions[0]: an assertion needs sql or command',
    );
  });

  it('s3 keys come in pairs', () => {
    const text = BASE.replace(
      'file:///var/backups/lifeboat',
      's3://acme-b/x\n    s3: { accessKeyId: env:AK }',
    );
    expect(problemLines(text)[0]).toContain(
      'repositories.local.s3.secretAccessKey: secretAccessKey is missing',
    );
  });

  it('round-trips the full example through the schema alone', async () => {
    const { readFile } = await import('node:fs/promises');
    const { parse: parseYaml } = await import('yaml');
    const text = await readFile(new URL('../../../fixtures/config/full.yaml', import.meta.url), 'utf8');
    expect(configSchema.safeParse(parseYaml(text)).success).toBe(true);
  });
});

describe('configJsonSchema', () => {
  const schema = configJsonSchema() as {
    properties: Record<string, { properties?: Record<string, Record<string, unknown>> }>;
  };
  it('describes the file as written: durations and sizes as text', () => {
    const defaults = schema.properties.defaults!.properties!;
    expect(defaults.reportWindow).toMatchObject({ type: 'string', default: '30d' });
    expect(new RegExp(defaults.reportWindow!.pattern as string).test('1h30m')).toBe(true);
    expect(new RegExp(defaults.reportWindow!.pattern as string).test('1.5h')).toBe(false);
    expect(JSON.stringify(schema)).toContain('"additionalProperties":false');
  });

  it('lists every job kind', () => {
    const text = JSON.stringify(schema);
    for (const kind of ['files', 'postgres', 'mysql', 'snapshot', 'image'])
      expect(text).toContain(`"const":"${kind}"`);
  });
});

describe('starterConfig', () => {
  it('is valid and uses the state directory', () => {
    const text = starterConfig({ stateDir: '/home/u/.local/state/lifeboat', backupPath: '/home/u' });
    const { config, warnings } = parse(text);
    expect(warnings).toEqual([]);
    expect(config.repositories.local).toMatchObject({
      url: 'file:///home/u/.local/state/lifeboat/repository',
      password: { kind: 'env', name: 'LIFEBOAT_PASSWORD' },
    });
    expect(config.jobs.files).toMatchObject({ kind: 'files', paths: ['/home/u'], policy: 'standard' });
    expect(text).toMatch(/^# lifeboat configuration/);
  });

  it('quotes paths that need it', () => {
    const text = starterConfig({ stateDir: '/srv/my state', backupPath: '/home/a b' });
    expect(parse(text).config.jobs.files).toMatchObject({ paths: ['/home/a b'] });
  });
});

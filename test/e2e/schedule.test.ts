import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { LIFEBOAT_BIN } from '../helpers/binary.js';
import { configHead, ensureBuilt, makeSandbox, type Sandbox } from './runHarness.js';

const exec = promisify(execFile);

let sb: Sandbox;

beforeAll(async () => {
  await ensureBuilt();
  sb = await makeSandbox(
    'schedule',
    (dir) =>
      [
        configHead(dir),
        'policies:',
        '  p: { rpo: 1h, drill: { every: 7d }, check: { every: 1d }, retention: { last: 3 } }',
        'jobs:',
        '  web:',
        '    kind: files',
        `    paths: [${join(dir, 'src/web')}]`,
        '    schedule: { cron: "0 * * * *", timezone: Europe/Berlin }',
        'notifications:',
        '  webhooks: [{ url: env:HOOK_URL }]',
        `  prometheus: { textfileDir: ${join(dir, 'textfile')} }`,
        '',
      ].join('\n'),
    ['src/web'],
  );
  expect((await sb.run('2024-06-01T10:00:00Z', 'repo', 'init')).code).toBe(0);
}, 120_000);

afterAll(async () => {
  await sb.cleanup();
});

async function systemdAnalyze(): Promise<boolean> {
  try {
    await exec('systemd-analyze', ['--version']);
    return true;
  } catch {
    return false;
  }
}

describe('schedule install', () => {
  it('--systemd writes a oneshot service and a 5-minute persistent timer that systemd accepts', async () => {
    const out = join(sb.dir, 'systemd');
    const r = await sb.run('2024-06-01T10:00:00Z', 'schedule', 'install', '--systemd', '--out', out);
    expect(r.code).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['lifeboat.service', 'lifeboat.timer']);
    const service = await readFile(join(out, 'lifeboat.service'), 'utf8');
    const timer = await readFile(join(out, 'lifeboat.timer'), 'utf8');
    expect(service).toMatch(/^Type=oneshot$/m);
    expect(service).toContain(
      `ExecStart=${process.execPath} ${LIFEBOAT_BIN} --config ${sb.configFile} run --due\n`,
    );
    expect(service).toMatch(/^ProtectSystem=strict$/m);
    expect(service).toMatch(/^ProtectHome=read-only$/m);
    expect(service).toContain(
      `ReadWritePaths=-${sb.stateDir} -${join(sb.stateDir, 'scratch')} -${join(sb.dir, 'repo')} -${join(sb.dir, 'textfile')}\n`,
    );
    expect(service).toMatch(/^NoNewPrivileges=yes$/m);
    expect(service).toContain('# Secrets referenced as env: in the configuration (HOOK_URL, LB_E2E_PW)');
    expect(timer).toMatch(/^OnCalendar=\*:0\/5$/m);
    expect(timer).toMatch(/^Persistent=true$/m);
    expect(timer).toMatch(/^WantedBy=timers.target$/m);

    if (await systemdAnalyze()) {
      // verify checks syntax, known options and that ExecStart is executable.
      const v = await exec('systemd-analyze', [
        'verify',
        join(out, 'lifeboat.service'),
        join(out, 'lifeboat.timer'),
      ]).then(
        (x) => ({ ok: true, stderr: x.stderr }),
        (e: { stderr: string }) => ({ ok: false, stderr: e.stderr }),
      );
      expect(v).toEqual({ ok: true, stderr: '' });
    } else {
      console.warn('systemd-analyze is not installed: the units were checked by content only');
    }
  });

  it('never overwrites without --force', async () => {
    const out = join(sb.dir, 'systemd');
    await writeFile(join(out, 'lifeboat.timer'), 'mine\n');
    const refused = await sb.run('2024-06-01T10:00:00Z', 'schedule', 'install', '--systemd', '--out', out);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`${out}/lifeboat.service already exists`);
    expect(await readFile(join(out, 'lifeboat.timer'), 'utf8')).toBe('mine\n');
    const forced = await sb.run(
      '2024-06-01T10:00:00Z',
      'schedule',
      'install',
      '--systemd',
      '--out',
      out,
      '--force',
    );
    expect(forced.code).toBe(0);
    expect(await readFile(join(out, 'lifeboat.timer'), 'utf8')).toContain('OnCalendar=*:0/5');
  });

  it('--crontab prints an entry every five minutes with PATH and a log redirect', async () => {
    const r = await sb.run('2024-06-01T10:00:00Z', 'schedule', 'install', '--crontab');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^PATH=\/usr\/local\/sbin:/m);
    expect(r.stdout).toContain(
      `*/5 * * * * ${process.execPath} ${LIFEBOAT_BIN} --config ${sb.configFile} run --due >> ${join(sb.stateDir, 'cron.log')} 2>&1\n`,
    );
  });

  it('--kubernetes prints a CronJob that forbids overlaps, with config, secrets and a state volume', async () => {
    const r = await sb.run(
      '2024-06-01T10:00:00Z',
      'schedule',
      'install',
      '--kubernetes',
      '--image',
      'registry.example/lifeboat:1.2',
      '--namespace',
      'backup',
    );
    expect(r.code).toBe(0);
    const docs = parseAllDocuments(r.stdout).map((d) => {
      expect(d.errors).toEqual([]);
      return d.toJS() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    });
    expect(docs.map((d) => d.kind)).toEqual(['ConfigMap', 'PersistentVolumeClaim', 'CronJob']);
    const [configMap, pvc, cron] = docs as [Record<string, any>, Record<string, any>, Record<string, any>]; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(configMap.metadata).toMatchObject({ name: 'lifeboat-config', namespace: 'backup' });
    expect(configMap.data['lifeboat.yaml']).toBe(await readFile(sb.configFile, 'utf8'));
    expect(pvc.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(cron.apiVersion).toBe('batch/v1');
    expect(cron.spec.schedule).toBe('*/5 * * * *');
    expect(cron.spec.concurrencyPolicy).toBe('Forbid');
    const pod = cron.spec.jobTemplate.spec.template.spec;
    expect(pod.restartPolicy).toBe('Never');
    const [container] = pod.containers;
    expect(container.image).toBe('registry.example/lifeboat:1.2');
    expect(container.args).toEqual(['--config', '/etc/lifeboat/lifeboat.yaml', 'run', '--due']);
    expect(container.env).toEqual([
      { name: 'HOOK_URL', valueFrom: { secretKeyRef: { name: 'lifeboat-secrets', key: 'HOOK_URL' } } },
      { name: 'LB_E2E_PW', valueFrom: { secretKeyRef: { name: 'lifeboat-secrets', key: 'LB_E2E_PW' } } },
    ]);
    expect(container.volumeMounts).toEqual([
      { name: 'config', mountPath: '/etc/lifeboat', readOnly: true },
      { name: 'state', mountPath: sb.stateDir },
    ]);
    expect(pod.volumes).toEqual([
      { name: 'config', configMap: { name: 'lifeboat-config' } },
      { name: 'state', persistentVolumeClaim: { claimName: 'lifeboat-state' } },
    ]);
    expect(r.stdout).not.toContain('*a1'); // no YAML aliases: kubectl and humans read it plainly
  });

  it('asks for exactly one target', async () => {
    const r = await sb.run('2024-06-01T10:00:00Z', 'schedule', 'install');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('choose one of --crontab, --systemd or --kubernetes');
  });
});

describe('schedule show', () => {
  it('lists the next times of each activity in the job’s time zone', async () => {
    const r = await sb.run('2024-06-01T10:05:00Z', '--json', 'schedule', 'show', '--count', '3');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as {
      activities: Array<{ id: string; cadence: string; times: string[]; due: boolean; available: boolean }>;
    };
    const byId = Object.fromEntries(d.activities.map((a) => [a.id, a]));
    expect(byId['backup:web']).toMatchObject({
      cadence: 'hourly (0 * * * * Europe/Berlin)',
      due: true,
      times: ['2024-06-01T10:05:00.000Z', '2024-06-01T11:00:00.000Z', '2024-06-01T12:00:00.000Z'],
    });
    expect(byId['drill:web']).toMatchObject({
      cadence: 'every 7d after the last success',
      times: ['2024-06-01T10:05:00.000Z', '2024-06-08T10:05:00.000Z', '2024-06-15T10:05:00.000Z'],
    });
    expect(byId['check:local']!.cadence).toBe('every 1d after the last success');
    expect(byId['retention:local']).toMatchObject({ due: false, times: [] });

    const human = await sb.run('2024-06-01T10:05:00Z', 'schedule', 'show', '--count', '2');
    expect(human.stdout).toMatch(
      /backup\s+web\s+local\s+hourly \(0 \* \* \* \* Europe\/Berlin\)\s+now, 13:00 Europe\/Berlin/,
    );
  });
});

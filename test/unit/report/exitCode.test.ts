import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { reportExitCode, sha256Manifest } from '../../../src/app/report.js';
import { buildReport, type Report } from '../../../src/report/index.js';
import { fixture, NOW } from './fixture.js';

function withSummary(summary: Partial<Report['summary']>): Report {
  const { evidence, targets } = fixture();
  const r = buildReport(evidence, targets, NOW);
  return { ...r, summary: { pass: 1, warning: 0, fail: 0, unknown: 0, ...summary } };
}

const missing = [{ repository: 'vault', error: { code: 'E_REPO_MISSING', message: 'gone' } }];
const denied = [{ repository: 'vault', error: { code: 'E_ACCESS_DENIED', message: 'wrong password' } }];

describe('reportExitCode', () => {
  it.each([
    ['all pass', {}, 'breach', [], 0],
    ['a warning, --fail-on breach', { warning: 1 }, 'breach', [], 0],
    ['a warning, --fail-on warning', { warning: 1 }, 'warning', [], 4],
    ['a failure, --fail-on breach', { fail: 1 }, 'breach', [], 4],
    ['a failure, --fail-on never', { fail: 1 }, 'never', [], 0],
    ['unknown alone does not fail', { unknown: 3 }, 'warning', [], 0],
    ['a repository missing', { unknown: 3 }, 'breach', missing, 10],
    ['a repository missing wins over a breach', { fail: 1 }, 'breach', missing, 10],
    ['a wrong password', { unknown: 3 }, 'breach', denied, 12],
    ['--fail-on never ignores repositories too', { unknown: 3 }, 'never', denied, 0],
  ] as const)('%s → %i', (_name, summary, failOn, failures, code) => {
    expect(reportExitCode(withSummary(summary), failOn, [...failures])).toBe(code);
  });
});

describe('sha256Manifest', () => {
  it('is what sha256sum -c checks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'lb-manifest-'));
    try {
      const files = [
        { name: 'a.json', data: '{"x":1}\n' },
        { name: 'b.jsonl', data: 'é\n' },
      ];
      for (const f of files) await writeFile(join(dir, f.name), f.data);
      await writeFile(join(dir, 'SHA256SUMS'), sha256Manifest(files));
      const { stdout } = await promisify(execFile)('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir });
      expect(stdout).toBe('a.json: OK\nb.jsonl: OK\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildReport, renderJunit, type Report } from '../../../src/report/index.js';
import { describeWith } from '../../helpers/loop.js';
import { fixture, NOW } from './fixture.js';
import { probeCommand, xmllintSchema } from './tools.js';

const XSD = fileURLToPath(new URL('./junit.xsd', import.meta.url));
const xmllint = await probeCommand('xmllint', 'libxml2-utils');

function report(): Report {
  const { evidence, targets } = fixture();
  return buildReport(evidence, targets, NOW);
}

/** The fixture report with hostile texts: markup, CDATA ends, quotes, control characters, lone surrogates. */
function hostileReport(): Report {
  const r = report();
  const job = r.jobs[0]!;
  job.job = '<job & "x"> \u0001';
  const c = job.controls[1]!;
  c.status = 'fail';
  c.measured = 'gap ]]> <b>bold</b> & "quoted" \'single\' \u0000\u0008\u001f \uFFFE \uD800 end';
  c.target = '< 1h & done';
  c.evidence.push({ kind: 'run', id: '"><x', repository: 'a&b', time: '2024-06-01T00:00:00.000Z' });
  r.jobs[1]!.controls[0]!.status = 'unknown';
  return r;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lb-junit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describeWith(xmllint, 'JUnit XML validates against the JUnit schema (xmllint)', () => {
  it.each([
    ['the fixture report', report],
    ['a report with hostile texts', hostileReport],
    ['a report without jobs', () => ({ ...report(), jobs: [] })],
  ])('%s', async (_name, make) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.xml`);
    await writeFile(file, renderJunit(make()));
    const r = await xmllintSchema(file, XSD);
    expect(r.output).toContain('validates');
    expect(r.code).toBe(0);
  });

  it('the schema check can fail: a testcase without a name is rejected', async () => {
    const file = join(dir, 'broken.xml');
    await writeFile(file, renderJunit(report()).replace(/<testcase name="[^"]*"/, '<testcase'));
    const r = await xmllintSchema(file, XSD);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/attribute 'name' is required/);
  });
});

it('maps fail to <failure> (measured vs target), unknown to <skipped>, warning to a passing case', () => {
  const r = report();
  const xml = renderJunit(r);
  const all = r.jobs.flatMap((j) => j.controls);
  expect(xml.match(/<testcase /g)).toHaveLength(all.length);
  expect(xml.match(/<failure /g)).toHaveLength(all.filter((c) => c.status === 'fail').length);
  expect(xml.match(/<skipped /g)).toHaveLength(all.filter((c) => c.status === 'unknown').length);
  expect(xml.match(/WARNING: measured/g)).toHaveLength(all.filter((c) => c.status === 'warning').length);
  expect(xml).toContain(
    '<failure message="rto failed: measured last drill failed 5h 44m ago; restore took 14m of an RTO of 10m; ' +
      'worst 14m, p95 14m over 5 timed drills; target restore takes less than 10m" type="rto">',
  );
  expect(xml).toMatch(/<testsuite name="archive" tests="5" failures="0" errors="0" skipped="5"/);
});

it('escapes markup and drops characters XML cannot hold', () => {
  const xml = renderJunit(hostileReport());
  expect(xml).not.toMatch(/<b>|<x|]]>/);
  expect(xml).toContain('name="&lt;job &amp; &quot;x&quot;&gt; \uFFFD"');
  // eslint-disable-next-line no-control-regex
  expect(xml).not.toMatch(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE]/);
});

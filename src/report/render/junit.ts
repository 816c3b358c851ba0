/**
 * JUnit XML, for CI tools: a <testsuite> per job, a <testcase> per control. A failed control is a
 * <failure> whose message holds what was measured against the target; an unknown control (no
 * evidence) is <skipped> — CI shows it as not run, never as passed; a warning passes with the
 * warning in <system-out>. Controls a policy does not ask for are left out. Only elements and
 * attributes of the widely accepted Ant/Jenkins format are written (docs/reports.md).
 */
import type { Control, JobReport, Report } from '../model.js';
import { escapeXml } from './escape.js';

const attr = (name: string, value: string | number) => ` ${name}="${escapeXml(String(value))}"`;

/** ISO time without zone or fraction: the form the Ant schema's timestamp accepts. */
function antTimestamp(iso: string): string {
  return iso.slice(0, 19);
}

function evidenceLines(c: Control): string[] {
  return c.evidence.map((e) => `evidence: ${e.kind} ${e.id} in ${e.repository} at ${e.time}`);
}

function testcase(job: JobReport, c: Control): string {
  const head = `    <testcase${attr('name', `${c.id}: ${c.title}`)}${attr('classname', `lifeboat.${job.job}`)}${attr('time', 0)}`;
  const body: string[] = [];
  const detail = [`measured: ${c.measured}`, `target: ${c.target}`, ...evidenceLines(c)].join('\n');
  if (c.status === 'fail') {
    body.push(
      `      <failure${attr('message', `${c.id} failed: measured ${c.measured}; target ${c.target}`)}${attr('type', c.id)}>${escapeXml(detail)}</failure>`,
    );
  } else if (c.status === 'unknown') {
    body.push(`      <skipped${attr('message', `${c.id} unknown (no evidence): ${c.measured}`)}/>`);
  }
  const out = c.status === 'warning' ? `WARNING: ${detail}` : detail;
  body.push(`      <system-out>${escapeXml(out)}</system-out>`);
  return `${head}>\n${body.join('\n')}\n    </testcase>`;
}

function testsuite(report: Report, job: JobReport): string {
  const count = (s: string) => job.controls.filter((c) => c.status === s).length;
  const props: Array<[string, string]> = [
    ['kind', job.kind],
    ['policy', job.policy],
    ['status', job.status],
    ['repositories', job.repositories.join(',')],
    ['window.from', report.window.from],
    ['window.to', report.window.to],
  ];
  return [
    `  <testsuite${attr('name', job.job)}${attr('tests', job.controls.length)}${attr('failures', count('fail'))}` +
      `${attr('errors', 0)}${attr('skipped', count('unknown'))}${attr('time', 0)}${attr('timestamp', antTimestamp(report.generatedAt))}>`,
    '    <properties>',
    ...props.map(([n, v]) => `      <property${attr('name', n)}${attr('value', v)}/>`),
    '    </properties>',
    ...job.controls.map((c) => testcase(job, c)),
    '  </testsuite>',
  ].join('\n');
}

/** Render the report as JUnit XML. */
export function renderJunit(report: Report): string {
  const all = report.jobs.flatMap((j) => j.controls);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attr('name', 'lifeboat compliance report')}${attr('tests', all.length)}` +
      `${attr('failures', all.filter((c) => c.status === 'fail').length)}${attr('errors', 0)}${attr('time', 0)}>`,
    ...report.jobs.map((j) => testsuite(report, j)),
    '</testsuites>',
    '',
  ].join('\n');
}

/**
 * Drill results as JUnit XML for CI: one <testsuite> per drill, one <testcase> per step,
 * failures with what was measured and what was expected. Pure.
 */
import type { DrillResult } from './drillModel.js';
import { RTO_STEP } from './drillModel.js';

/** Text safe inside XML 1.0 content and attributes: escaped, characters XML cannot hold removed. */
export function xmlText(value: string): string {
  return (
    value
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
      .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

function attrs(pairs: Record<string, string | number>): string {
  return Object.entries(pairs)
    .map(([k, v]) => ` ${k}="${xmlText(String(v))}"`)
    .join('');
}

function suite(r: DrillResult, host: string): string[] {
  const failures = r.steps.filter((s) => s.status === 'fail').length;
  const skipped = r.steps.filter((s) => s.status === 'skip').length;
  const lines = [
    `  <testsuite${attrs({
      name: `drill ${r.job}`,
      tests: r.steps.length,
      failures,
      errors: 0,
      skipped,
      time: seconds(r.durationMs),
      timestamp: r.startedAt,
      hostname: host,
    })}>`,
    '    <properties>',
  ];
  const props: Record<string, string | number> = {
    job: r.job,
    kind: r.kind,
    verdict: r.verdict,
    runId: r.runId,
    repository: r.repository ?? '',
    snapshot: r.snapshotId ?? '',
    snapshotTime: r.snapshotTime ?? '',
    selection: r.selection,
    scratch: r.scratch,
    provisionMs: r.phases.provisionMs,
    restoreMs: r.phases.restoreMs,
    verifyMs: r.phases.verifyMs,
    teardownMs: r.phases.teardownMs,
    measuredRtoMs: r.measuredRtoMs,
    rtoMs: r.rtoMs ?? 'none',
  };
  if (r.coverage) props.coverage = `${r.coverage.drilled}/${r.coverage.points}`;
  for (const [name, value] of Object.entries(props)) lines.push(`      <property${attrs({ name, value })}/>`);
  lines.push('    </properties>');
  for (const s of r.steps) {
    const head = `    <testcase${attrs({ classname: `lifeboat.drill.${r.job}`, name: s.name, time: seconds(s.durationMs) })}`;
    if (s.status === 'pass') {
      lines.push(`${head}/>`);
    } else if (s.status === 'skip') {
      lines.push(`${head}>`, `      <skipped${attrs({ message: s.message ?? '' })}/>`, '    </testcase>');
    } else {
      const body = [
        s.message ?? '',
        ...(s.expected !== undefined ? [`expected: ${s.expected}`] : []),
        ...(s.actual !== undefined ? [`measured: ${s.actual}`] : []),
      ].join('\n');
      lines.push(
        `${head}>`,
        `      <failure${attrs({ type: s.name === RTO_STEP ? 'breach' : 'fail', message: s.message ?? 'failed' })}>${xmlText(body)}</failure>`,
        '    </testcase>',
      );
    }
  }
  lines.push('  </testsuite>');
  return lines;
}

/** The JUnit document of a drill run. */
export function drillJunit(results: readonly DrillResult[], host: string): string {
  const tests = results.reduce((n, r) => n + r.steps.length, 0);
  const failures = results.reduce((n, r) => n + r.steps.filter((s) => s.status === 'fail').length, 0);
  const time = results.reduce((n, r) => n + r.durationMs, 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: 'lifeboat drills', tests, failures, errors: 0, time: seconds(time) })}>`,
    ...results.flatMap((r) => suite(r, host)),
    '</testsuites>',
    '',
  ].join('\n');
}

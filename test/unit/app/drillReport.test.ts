import { describe, expect, it } from 'vitest';
import { assertionBaseEnv, matchesExpectation, showValue } from '../../../src/app/drillAssertions.js';
import { drillJunit, xmlText } from '../../../src/app/drillJunit.js';
import type { DrillResult } from '../../../src/app/drillModel.js';

describe('assertion values', () => {
  it.each([
    [true, true, true],
    ['t', true, true],
    [1, true, true],
    ['1', true, true],
    [false, true, false],
    ['f', false, true],
    [0, false, true],
    [null, true, false],
    [undefined, true, false],
    ['500', 500, true],
    [500n, 500, true],
    ['500.0', 500, true],
    ['abc', 500, false],
    ['owner 7', 'owner 7', true],
    [Buffer.from('owner 7'), 'owner 7', true],
    [7, '7', true],
  ] as Array<[unknown, boolean | number | string, boolean]>)(
    'case %# (expect %s)',
    (actual, expected, ok) => {
      expect(matchesExpectation(actual, expected)).toBe(ok);
    },
  );

  it('shows values unambiguously', () => {
    expect([showValue('500'), showValue(500), showValue(null), showValue(undefined)]).toEqual([
      '"500"',
      '500',
      'NULL',
      'no row',
    ]);
  });

  it('never lets an assertion inherit a way to reach other servers or lifeboat secrets', () => {
    const env = assertionBaseEnv({
      PATH: '/bin',
      PGHOST: 'prod',
      PGPASSWORD: 'x',
      MYSQL_PWD: 'y',
      DATABASE_URL: 'postgres://prod',
      LIFEBOAT_PASSWORD: 'z',
      HOME: '/root',
    });
    expect(env).toEqual({ PATH: '/bin', HOME: '/root' });
  });
});

describe('JUnit report', () => {
  it('escapes text and drops characters XML cannot hold', () => {
    expect(xmlText(`a<b>&"c"'d'\u0001\u0008e\u001f\tf\ud800`)).toBe(
      'a&lt;b&gt;&amp;&quot;c&quot;&apos;d&apos;e\tf',
    );
  });

  it('has one suite per drill and one case per step, failures with measured and expected', () => {
    const r: DrillResult = {
      job: 'web<1>',
      kind: 'files',
      runId: 'r1',
      recorded: true,
      repository: 'local',
      snapshotId: 's1',
      snapshotTime: 't',
      selection: 'latest',
      scratch: 'directory',
      verdict: 'breach',
      outcome: 'failure',
      startedAt: '2026-01-01T00:00:00.000Z',
      endedAt: '2026-01-01T00:00:01.500Z',
      durationMs: 1500,
      phases: { provisionMs: 1, restoreMs: 1200, verifyMs: 200, teardownMs: 2 },
      measuredRtoMs: 1200,
      rtoMs: 1000,
      provisioningCounts: false,
      steps: [
        { name: 'restore', status: 'pass', durationMs: 1200 },
        { name: 'assertion 1', status: 'skip', message: 'not run', durationMs: 0 },
        {
          name: 'rto',
          status: 'fail',
          message: 'restore took 1.20 s',
          durationMs: 0,
          expected: '<= 1000 ms',
          actual: '1200 ms',
        },
      ],
    };
    expect(drillJunit([r], 'host-1')).toBe(
      [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<testsuites name="lifeboat drills" tests="3" failures="1" errors="0" time="1.500">',
        '  <testsuite name="drill web&lt;1&gt;" tests="3" failures="1" errors="0" skipped="1" time="1.500" timestamp="2026-01-01T00:00:00.000Z" hostname="host-1">',
        '    <properties>',
        '      <property name="job" value="web&lt;1&gt;"/>',
        '      <property name="kind" value="files"/>',
        '      <property name="verdict" value="breach"/>',
        '      <property name="runId" value="r1"/>',
        '      <property name="repository" value="local"/>',
        '      <property name="snapshot" value="s1"/>',
        '      <property name="snapshotTime" value="t"/>',
        '      <property name="selection" value="latest"/>',
        '      <property name="scratch" value="directory"/>',
        '      <property name="provisionMs" value="1"/>',
        '      <property name="restoreMs" value="1200"/>',
        '      <property name="verifyMs" value="200"/>',
        '      <property name="teardownMs" value="2"/>',
        '      <property name="measuredRtoMs" value="1200"/>',
        '      <property name="rtoMs" value="1000"/>',
        '    </properties>',
        '    <testcase classname="lifeboat.drill.web&lt;1&gt;" name="restore" time="1.200"/>',
        '    <testcase classname="lifeboat.drill.web&lt;1&gt;" name="assertion 1" time="0.000">',
        '      <skipped message="not run"/>',
        '    </testcase>',
        '    <testcase classname="lifeboat.drill.web&lt;1&gt;" name="rto" time="0.000">',
        '      <failure type="breach" message="restore took 1.20 s">restore took 1.20 s\nexpected: &lt;= 1000 ms\nmeasured: 1200 ms</failure>',
        '    </testcase>',
        '  </testsuite>',
        '</testsuites>',
        '',
      ].join('\n'),
    );
  });
});

import { describe, it } from 'vitest';
import {
  buildReport,
  buildRunbook,
  renderHtml,
  renderJson,
  renderJunit,
  renderMarkdown,
  renderRunbookHtml,
  renderRunbookMarkdown,
  renderTable,
} from '../../../src/report/index.js';
import { fixture, NOW } from './fixture.js';
import { expectGolden } from './golden.js';
import { runbookTargets } from './runbookFixture.js';

describe('report renderers (golden files; UPDATE_GOLDEN=1 regenerates)', () => {
  const { evidence, targets } = fixture();
  const report = buildReport(evidence, targets, NOW);

  it.each([
    ['report.txt', () => renderTable(report, { color: false, timeZone: 'UTC' })],
    ['report.color.txt', () => renderTable(report, { color: true, timeZone: 'UTC' })],
    ['report.json', () => renderJson(report)],
    ['report.junit.xml', () => renderJunit(report)],
    ['report.md', () => renderMarkdown(report, { timeZone: 'UTC' })],
    ['report.html', () => renderHtml(report, { timeZone: 'UTC' })],
  ])('%s', async (name, render) => {
    await expectGolden(name, render());
  });

  it.each([
    ['runbook.md', 'markdown'],
    ['runbook.html', 'html'],
  ])('%s', async (name, format) => {
    const { evidence: ev, targets: t } = fixture();
    const runbook = buildRunbook(ev, runbookTargets(t), NOW);
    await expectGolden(name, format === 'html' ? renderRunbookHtml(runbook) : renderRunbookMarkdown(runbook));
  });
});

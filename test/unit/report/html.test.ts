import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  buildReport,
  buildRunbook,
  renderHtml,
  renderRunbookHtml,
  type Report,
} from '../../../src/report/index.js';
import { describeWith } from '../../helpers/loop.js';
import { launchChromium, probeChromium, visit } from './browser.js';
import { fixture, NOW } from './fixture.js';

/** getComputedStyle inside page.evaluate (the test's TypeScript has no DOM library). */
interface StyleWindow {
  getComputedStyle(el: unknown): { backgroundColor: string; breakBefore: string };
}
import { runbookTargets } from './runbookFixture.js';

const chromium = await probeChromium();
/** Set to keep the screenshots and PDFs (e.g. to look at them); otherwise a temp dir. */
const KEEP = process.env.LIFEBOAT_REPORT_SHOTS;

let dir: string;
let browser: Browser;

function report(): Report {
  const { evidence, targets } = fixture();
  return buildReport(evidence, targets, NOW);
}

beforeAll(async () => {
  dir = KEEP ?? (await mkdtemp(join(tmpdir(), 'lb-html-')));
  if (chromium.ok) browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  if (!KEEP) await rm(dir, { recursive: true, force: true });
});

describeWith(chromium, 'the HTML report in headless Chromium', () => {
  it('renders offline without errors, with a timeline and a drill chart per job', async () => {
    const r = report();
    const file = join(dir, 'report.html');
    await writeFile(file, renderHtml(r));
    const v = await visit(browser, file);
    expect(v.consoleErrors).toEqual([]);
    expect(v.pageErrors).toEqual([]);
    expect(v.outside).toEqual([]);
    const page = v.page;
    expect(await page.locator('svg.chart.timeline').count()).toBe(r.jobs.length);
    expect(await page.locator('svg.chart.drills').count()).toBe(r.jobs.length);
    // web and db have restore points: an exposure line and an RPO line each; archive has none.
    expect(await page.locator('svg.timeline path.exposure').count()).toBe(2);
    expect(await page.locator('svg.timeline line.rpo').count()).toBe(2);
    const timed = r.jobs.flatMap((j) => j.timeline.drills).filter((d) => d.measuredMs !== null).length;
    expect(await page.locator('svg.drills circle.drill').count()).toBe(timed);
    expect(await page.locator('svg.drills line.rto').count()).toBe(2);
    const points = r.jobs.flatMap((j) => j.timeline.points);
    expect(points.length).toBeGreaterThan(100);
    // Every control is a row; every status has its badge colour.
    const controls = r.jobs.flatMap((j) => j.controls);
    expect(await page.locator('table.controls tr.control').count()).toBe(controls.length);
    const failColour = await page
      .locator('tr.control.fail .badge')
      .first()
      .evaluate((el) => (globalThis as unknown as StyleWindow).getComputedStyle(el).backgroundColor);
    expect(failColour).toBe('rgb(207, 34, 46)');
    // The charts have a real size.
    const box = await page.locator('svg.chart.timeline').first().boundingBox();
    expect(box!.width).toBeGreaterThan(800);
    expect(box!.height).toBeGreaterThan(100);

    const shot = join(dir, 'report.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = await readFile(shot);
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    expect(png.length).toBeGreaterThan(50_000);
    await page.close();
  });

  it('shows hostile texts as text: no element, no script comes out of the evidence', async () => {
    const r = report();
    r.jobs[0]!.job = '<img src=x onerror=alert(1)>';
    r.jobs[0]!.controls[0]!.measured = '<script>alert("measured")</script>';
    r.jobs[0]!.timeline.drills[0]!.id = '</title><script>alert(2)</script>';
    r.warnings.push('<iframe src="https://example.com/"></iframe>');
    const file = join(dir, 'hostile.html');
    await writeFile(file, renderHtml(r));
    const v = await visit(browser, file);
    expect(v.pageErrors).toEqual([]);
    expect(v.outside).toEqual([]);
    expect(await v.page.locator('script, img, iframe').count()).toBe(0);
    const text = await v.page.locator('body').innerText();
    expect(text).toContain('<script>alert("measured")</script>');
    expect(text).toContain('<img src=x onerror=alert(1)>');
    await v.page.close();
  });

  it('prints: a page per job, badges in colour, a PDF', async () => {
    const file = join(dir, 'print.html');
    await writeFile(file, renderHtml(report()));
    const v = await visit(browser, file);
    await v.page.emulateMedia({ media: 'print' });
    const breakBefore = await v.page
      .locator('section.job')
      .first()
      .evaluate((el) => (globalThis as unknown as StyleWindow).getComputedStyle(el).breakBefore);
    expect(breakBefore).toBe('page');
    const pdf = await v.page.pdf({ format: 'A4', printBackground: true });
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    await writeFile(join(dir, 'report.pdf'), pdf);
    await v.page.close();
  });

  it('renders the runbook without errors, every command in a block', async () => {
    const { evidence, targets } = fixture();
    const runbook = buildRunbook(evidence, runbookTargets(targets), NOW);
    const file = join(dir, 'runbook.html');
    await writeFile(file, renderRunbookHtml(runbook));
    const v = await visit(browser, file, 1000);
    expect(v.consoleErrors).toEqual([]);
    expect(v.pageErrors).toEqual([]);
    expect(v.outside).toEqual([]);
    const commands = runbook.jobs.flatMap((j) => j.commands);
    expect(await v.page.locator('ol.commands pre').allInnerTexts()).toEqual(commands.map((c) => c.command));
    await v.page.screenshot({ path: join(dir, 'runbook.png'), fullPage: true });
    await v.page.close();
  });
});

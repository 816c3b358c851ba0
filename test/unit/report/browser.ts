/**
 * Headless Chromium for the HTML tests, driven by playwright-core (no browser download: the
 * Debian `chromium` package, or CHROMIUM_PATH). Playwright gives each launch a fresh temporary
 * profile and removes it afterwards. A visit records console errors, page errors and every
 * request that leaves the file itself — the reports must work offline.
 */
import { access } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import type { Facility } from '../../helpers/loop.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Is Chromium installed? */
export async function probeChromium(): Promise<Facility> {
  try {
    await access(CHROMIUM);
    return { ok: true };
  } catch {
    return { ok: false, reason: `${CHROMIUM} is missing (apt-get install chromium, or set CHROMIUM_PATH)` };
  }
}

/** Launch headless Chromium with no network services, sync or first-run chatter. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

export interface Visit {
  page: Page;
  consoleErrors: string[];
  pageErrors: string[];
  /** Requests for anything but the file itself (should be none). */
  outside: string[];
}

/** Open a local HTML file in a new page of `width` × 900 pixels and record what happens. */
export async function visit(browser: Browser, file: string, width = 1280): Promise<Visit> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  const url = pathToFileURL(file).href;
  const v: Visit = { page, consoleErrors: [], pageErrors: [], outside: [] };
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') v.consoleErrors.push(`${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => v.pageErrors.push(e.message));
  page.on('request', (r) => {
    if (r.url() !== url) v.outside.push(r.url());
  });
  await page.goto(url, { waitUntil: 'load' });
  return v;
}

/**
 * The console's browser tests drive Debian's Chromium through playwright-core (nothing downloads
 * a browser). This module: the availability rule (skip on a user's machine without Chromium,
 * fail under CI), a page that records browser-console errors, sign-in, the "loaded" state of a
 * page, axe-core, and the horizontal-scroll check.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { describe, it } from 'vitest';
import { ROOT, type ServerProcess } from '../support/processes.js';
import { browserAvailability, CHROMIUM, CHROMIUM_MISSING } from './availability.js';

// What the functions run inside the page read of it: test/ is compiled without the DOM library.
interface DomNode {
  textContent: string | null;
  scrollWidth: number;
  clientWidth: number;
  querySelector(selector: string): DomNode | null;
  querySelectorAll(selector: string): ArrayLike<DomNode>;
}
declare const document: DomNode & { documentElement: DomNode; scrollingElement: DomNode | null; body: DomNode };
declare const window: Record<string, unknown>;

export const LAUNCH_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

/** Per browser test: generous, a real server and real agents sit behind the page. */
export const BROWSER_TEST_MS = 120_000;

/**
 * `describe` for a browser suite. Without Chromium: under CI=true one failing test says what to
 * install; elsewhere the suite is skipped (and test/summary-reporter.ts says it did not run).
 */
export function describeBrowser(name: string, body: () => void): void {
  const a = browserAvailability();
  if (a === 'ready') {
    describe(name, body);
  } else if (a === 'fail') {
    describe(name, () => {
      it('needs Chromium', () => {
        throw new Error(`${CHROMIUM_MISSING} (looked for ${CHROMIUM}; CI=true, so the browser suite may not be skipped)`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${CHROMIUM_MISSING})`, body);
  }
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
}

export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** `console.error` messages and uncaught exceptions, as they happened */
  errors: string[];
}

export const DESKTOP = { width: 1366, height: 768 };
export const TABLET = { width: 768, height: 1024 };

/** A fresh context (its own sessionStorage) and page, recording errors from the page. */
export async function openPage(browser: Browser, opts: { viewport?: { width: number; height: number }; downloads?: boolean } = {}): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: opts.viewport ?? DESKTOP, acceptDownloads: opts.downloads ?? false, reducedMotion: 'reduce' });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}${m.location().url ? ` (${m.location().url})` : ''}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.name}: ${e.message}`));
  return { context, page, errors };
}

/** Signs in through the sign-in page with the first user's name and password, as a user would. */
export async function signIn(page: Page, server: ServerProcess): Promise<void> {
  await page.goto(`${server.url}/`);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(server.adminPassword);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** Signs in with a sign-in link (`#token=…`, what `npm start` prints): quicker, for page checks. */
export async function signInByLink(page: Page, server: ServerProcess): Promise<void> {
  await page.goto(`${server.url}/#token=${encodeURIComponent(server.adminToken)}`);
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/**
 * Waits until the page in <main> has loaded: its h1 is visible, no "Loading…" status remains
 * in <main> and nothing there is aria-busy; then `ready` (the page's main table or section).
 */
export async function waitLoaded(page: Page, ready?: Locator, timeout = 30_000): Promise<void> {
  await page.locator('main h1').first().waitFor({ timeout });
  await page.waitForFunction(() => {
    const main = document.querySelector('main');
    if (!main) return false;
    const loading = Array.from(main.querySelectorAll('[role="status"]')).some((e) => /^\s*Loading/i.test(e.textContent ?? ''));
    return !loading && !main.querySelector('[aria-busy="true"]');
  }, undefined, { timeout, polling: 'raf' });
  if (ready) await ready.first().waitFor({ timeout });
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  helpUrl: string;
  nodes: { target: unknown[]; failureSummary?: string }[];
}

/** axe-core on the current page; the violations of impact serious or critical. */
export async function axeSerious(page: Page): Promise<AxeViolation[]> {
  // evaluated through the DevTools protocol, not as a <script> tag: the console's
  // Content-Security-Policy (script-src 'self') rightly refuses an inline script
  await page.evaluate(readFileSync(join(ROOT, 'node_modules/axe-core/axe.min.js'), 'utf8'));
  const violations = await page.evaluate(async () => {
    const axe = window.axe as { run: (ctx: unknown, opts: unknown) => Promise<{ violations: AxeViolation[] }> };
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl, nodes: v.nodes.map((n) => ({ target: n.target, failureSummary: n.failureSummary })) }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export function describeViolations(where: string, vs: AxeViolation[]): string {
  return vs
    .map((v) => `${where}: [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n${v.nodes.slice(0, 5).map((n) => `    ${JSON.stringify(n.target)} ${(n.failureSummary ?? '').replace(/\s+/g, ' ')}`).join('\n')}`)
    .join('\n');
}

/** How far the page body scrolls sideways (0: it fits the viewport). */
export function horizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => {
    const doc = document.scrollingElement ?? document.documentElement;
    return Math.max(doc.scrollWidth - doc.clientWidth, document.body.scrollWidth - document.body.clientWidth, 0);
  });
}

/** The main pages, as the router names them (packages/console/src/router.ts). */
export const hashOf = {
  dashboard: '#/',
  devices: '#/devices',
  device: (id: string) => `#/devices/${encodeURIComponent(id)}`,
  patches: '#/patches',
  patch: (id: string) => `#/patches/${encodeURIComponent(id)}`,
  deployments: '#/deployments',
  newDeployment: '#/deployments/new',
  deployment: (id: string) => `#/deployments/${encodeURIComponent(id)}`,
  reports: '#/reports',
  settings: '#/settings',
};

export function pdftotextAvailable(): boolean {
  return existsSync('/usr/bin/pdftotext');
}

export async function until<T>(what: string, f: () => Promise<T | undefined | false>, ms = 60_000, show = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${show()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

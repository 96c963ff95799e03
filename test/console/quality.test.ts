/**
 * Every main page of the console, on a real server with two real agents, a signed patch and a
 * deployment: axe-core finds no serious or critical violation, the browser console shows no
 * error, and at 1366×768 and 768×1024 the page body does not scroll sideways.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { api } from '../support/processes.js';
import {
  axeSerious, BROWSER_TEST_MS, describeBrowser, describeViolations, DESKTOP, hashOf, horizontalOverflow, launchBrowser, openPage,
  signIn, TABLET, waitLoaded, type WatchedPage,
} from './browser.js';
import { GROUP, P1, startFleet, type Fleet } from './fleet.js';

describeBrowser('console quality: accessibility, console errors, layout', () => {
  let fleet: Fleet;
  let browser: Browser;
  let w: WatchedPage;
  let deployment: string;

  beforeAll(async () => {
    [fleet, browser] = await Promise.all([startFleet(['q-alpha', 'q-beta'], 'pw-console-q-'), launchBrowser()]);
    const a = await api(fleet.server, 'POST', '/api/v1/approvals', { patch: P1, group: GROUP, decision: 'approve' });
    expect(a.status, JSON.stringify(a.body)).toBeLessThan(300);
    const d = await api<{ id: string }>(fleet.server, 'POST', '/api/v1/deployments', {
      patches: [P1], groups: [GROUP], start: new Date().toISOString(), rings: [{ name: 'canary', percent: 50 }, { name: 'all', percent: 100 }],
    });
    expect(d.status, JSON.stringify(d.body)).toBeLessThan(300);
    deployment = d.body.id;
    w = await openPage(browser);
    await signIn(w.page, fleet.server);
  }, BROWSER_TEST_MS);

  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  const pages: [string, () => string][] = [
    ['dashboard', () => hashOf.dashboard],
    ['devices', () => hashOf.devices],
    ['device', () => hashOf.device(fleet.ids['q-alpha']!)],
    ['patches', () => hashOf.patches],
    ['patch', () => hashOf.patch(P1)],
    ['deployments', () => hashOf.deployments],
    ['new deployment', () => hashOf.newDeployment],
    ['deployment', () => hashOf.deployment(deployment)],
    ['reports', () => hashOf.reports],
    ['settings', () => hashOf.settings],
  ];

  it('axe is wired in: it finds a missing text alternative on a page made to lack one', async () => {
    const s = await openPage(browser);
    try {
      await s.page.setContent('<!doctype html><html lang="en"><head><title>t</title></head><body><main><h1>t</h1><img src="data:,"></main></body></html>');
      expect((await axeSerious(s.page)).map((v) => v.id)).toContain('image-alt');
    } finally {
      await s.context.close();
    }
  }, BROWSER_TEST_MS);

  it('the sign-in page has no serious accessibility violation and no console error', async () => {
    const s = await openPage(browser);
    try {
      await s.page.goto(`${fleet.server.url}/`);
      await s.page.getByLabel('User name').waitFor();
      const problems = describeViolations('sign-in', await axeSerious(s.page));
      for (const v of [DESKTOP, TABLET]) {
        await s.page.setViewportSize(v);
        const over = await horizontalOverflow(s.page);
        expect(over, `sign-in at ${v.width}×${v.height} scrolls sideways by ${over}px`).toBe(0);
      }
      expect(problems, problems).toBe('');
      expect(s.errors, s.errors.join('\n')).toEqual([]);
    } finally {
      await s.context.close();
    }
  }, BROWSER_TEST_MS);

  for (const [name, hash] of pages) {
    it(`${name}: no serious axe violation, no console error, no sideways scroll at 1366 and 768`, async () => {
      const { page, errors } = w;
      errors.length = 0;
      const problems: string[] = [];
      await page.setViewportSize(DESKTOP);
      // a full load of the page's address (a fresh query cache), as a bookmark would
      await page.goto(`${fleet.server.url}/${hash()}`);
      await waitLoaded(page);
      const notFound = await page.getByRole('heading', { level: 1, name: 'Page not found' }).count();
      expect(notFound, `${name}: the console has no page at ${hash()}`).toBe(0);
      const violations = await axeSerious(page);
      if (violations.length) problems.push(describeViolations(name, violations));
      for (const v of [DESKTOP, TABLET]) {
        await page.setViewportSize(v);
        await page.waitForTimeout(100); // a frame for layout and ResizeObserver-driven charts
        const over = await horizontalOverflow(page);
        if (over > 0) problems.push(`${name} at ${v.width}×${v.height}: the page scrolls sideways by ${over}px`);
      }
      if (errors.length) problems.push(`${name}: errors in the browser console:\n  ${errors.join('\n  ')}`);
      expect(problems.join('\n'), problems.join('\n')).toBe('');
    }, BROWSER_TEST_MS);
  }
});

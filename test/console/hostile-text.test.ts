/**
 * Hostile text in a real browser: script tags, HTML with event handlers, `javascript:` URLs and
 * attribute break-outs put into every text field the console shows that a device (through its
 * enrollment and check-in facts) or an operator can set: hostnames, OS names, kernel release,
 * collector messages, group descriptions, enrollment secret names, webhook URLs, patch titles,
 * descriptions, vendors, products and advisories, ring names and halt reasons. Every page that
 * shows them must show them as text, run none of it (no `window.__pwned`, no dialog) and report
 * no Content-Security-Policy violation (which would mean the page tried to run or load some of
 * it). One server process, one browser, devices enrolled over HTTP: fast.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { canonicalDigest, PROTOCOL_VERSION, type SystemFacts } from '@patchwarden/core';
import { BOOKWORM, hashed, hostPackages, packagePatch } from '../../packages/server/src/testing/fixtures.js';
import { api, assertBuilt, startServerProcess, type ServerProcess } from '../support/processes.js';
import { BROWSER_TEST_MS, describeBrowser, hashOf, launchBrowser, openPage, signInByLink, until, waitLoaded, type WatchedPage } from './browser.js';

/** A payload per field, each marked with the field's name so a page shows which one it rendered. */
const X = (field: string) => `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">"><svg onload=window.__pwned=1>${field}`;
/** For fields of 100 characters at most. */
const XS = (field: string) => `"><img src=x onerror=window.__pwned=1>${field}`;
const JS_URL = 'javascript:window.__pwned=1//';

const T = {
  hostname: X('host-a'),
  hostname2: `${XS('host-b')}'-alert(1)-'`,
  osPretty: X('os-pretty'),
  osName: X('os-name'),
  kernel: X('kernel'),
  collector: X('collector-message'),
  groupDescription: X('group-description'),
  secretName: XS('secret-name'),
  title: X('patch-title'),
  description: `${X('patch-description')} ${JS_URL} [link](${JS_URL})`,
  vendor: XS('vendor'),
  product: X('product'),
  advisory: XS('advisory'),
  ring: XS('ring'),
  haltReason: X('halt-reason'),
  webhook: `https://hooks.example.com/x?a=%22%3E%3Csvg%20onload=window.__pwned=1%3Ewebhook-url`,
};
const PATCH = 'debian/dsa-hostile-1';
const GROUP = 'hostile-lab';

function facts(hostname: string): SystemFacts {
  return {
    hostname,
    os: { family: 'linux', distribution: 'debian', name: T.osName, prettyName: T.osPretty, version: '12', versionCodename: 'bookworm', machine: 'x86_64', packageArch: 'amd64' },
    kernel: { release: T.kernel, version: X('kernel-version') },
    timezone: 'Europe/Berlin',
    rebootRequired: false,
    agentVersion: '0.1.0',
    collectors: [
      { name: 'dpkg', status: 'ok', count: 5 },
      { name: 'rpm', status: 'error', message: T.collector },
    ],
  };
}

describeBrowser('console: hostile text is shown as text and never runs', () => {
  let dir: string;
  let server: ServerProcess;
  let browser: Browser;
  let w: WatchedPage;
  let page: Page;
  const ids: Record<string, string> = {};
  let deployment = '';
  const dialogs: string[] = [];
  const csp: string[] = [];

  async function ok<R>(what: string, r: Promise<{ status: number; body: R }>): Promise<R> {
    const x = await r;
    expect(x.status, `${what}: ${JSON.stringify(x.body)}`).toBeLessThan(300);
    return x.body;
  }

  beforeAll(async () => {
    assertBuilt();
    dir = mkdtempSync(join(tmpdir(), 'pw-console-hostile-'));
    const launched = launchBrowser();
    server = await startServerProcess(join(dir, 'server'));
    await ok('group', api(server, 'POST', '/api/v1/groups', { name: GROUP, description: T.groupDescription }));
    const { secret } = await ok<{ secret: string }>('secret', api(server, 'POST', '/api/v1/enrollment-secrets', { name: T.secretName, group: GROUP }));
    const inv = hashed(hostPackages().slice(0, 5));
    for (const hostname of [T.hostname, T.hostname2]) {
      const enrolled = await fetch(`${server.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret, system: facts(hostname) }) });
      expect(enrolled.status, await enrolled.clone().text()).toBe(200);
      const { deviceId, token } = (await enrolled.json()) as { deviceId: string; token: string };
      ids[hostname] = deviceId;
      const system = facts(hostname);
      const c = await fetch(`${server.url}/api/v1/agent/checkin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ protocol: PROTOCOL_VERSION, systemHash: canonicalDigest(system), system, inventory: { mode: 'full', ...inv } }),
      });
      expect(c.status, await c.text()).toBe(200);
    }
    const pkg = inv.packages[0]!;
    const manifest = packagePatch(PATCH, pkg.name, `${pkg.version}+fix9`, { title: T.title, description: T.description, vendor: T.vendor, product: T.product, advisories: [T.advisory] });
    await ok('patch', api(server, 'POST', '/api/v1/catalog/patches', { patches: [manifest], coverage: BOOKWORM, source: { kind: 'test' } }));
    await ok('approval', api(server, 'POST', '/api/v1/approvals', { patch: PATCH, group: GROUP, decision: 'approve' }));
    deployment = (await ok<{ id: string }>('deployment', api(server, 'POST', '/api/v1/deployments', {
      patches: [PATCH], groups: [GROUP], start: new Date().toISOString(), rings: [{ name: T.ring, percent: 50 }, { name: XS('ring-2'), percent: 100 }],
    }))).id;
    await ok('halt', api(server, 'POST', `/api/v1/deployments/${deployment}/halt`, { reason: T.haltReason }));
    await ok('webhook', api(server, 'POST', '/api/v1/webhooks', { url: T.webhook, events: ['ping'] }));
    // a javascript: URL is no webhook
    expect((await api(server, 'POST', '/api/v1/webhooks', { url: JS_URL, events: ['ping'] })).status).toBe(400);

    browser = await launched;
    w = await openPage(browser);
    page = w.page;
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      void d.dismiss();
    });
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) csp.push(m.text());
    });
    await page.addInitScript(() => {
      const g = globalThis as unknown as { __csp: string[]; addEventListener: (t: string, f: (e: { violatedDirective: string; blockedURI: string; sample?: string }) => void) => void };
      g.__csp = [];
      g.addEventListener('securitypolicyviolation', (e) => g.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample ?? ''}`));
    });
    await signInByLink(page, server);
  }, BROWSER_TEST_MS);

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** The page's visible text (what a reader sees: innerText leaves hidden elements out). */
  const visibleText = () => page.evaluate(() => (globalThis as unknown as { document: { body: { innerText: string } } }).document.body.innerText);

  /** Each page and the hostile texts it shows (the OS name is stored but shown nowhere: the pretty name is). */
  const pages: [string, () => string, string[]][] = [
    ['dashboard', () => hashOf.dashboard, [T.hostname, T.hostname2, T.title]],
    ['devices', () => hashOf.devices, [T.hostname, T.hostname2, T.osPretty]],
    ['device', () => hashOf.device(ids[T.hostname]!), [T.hostname, T.osPretty, T.kernel, T.collector, T.title]],
    ['patches', () => hashOf.patches, [T.title]],
    ['patch', () => hashOf.patch(PATCH), [T.title, T.description, T.vendor, T.product, T.advisory, T.hostname, T.hostname2]],
    ['deployments', () => hashOf.deployments, [T.haltReason]],
    ['deployment', () => hashOf.deployment(deployment), [T.ring, T.haltReason, T.hostname, T.hostname2]],
    ['new deployment', () => `${hashOf.newDeployment}?patch=${encodeURIComponent(PATCH)}`, []],
    ['reports by device', () => hashOf.reports, [T.hostname, T.hostname2]],
    ['reports by patch', () => `${hashOf.reports}?by=patch`, [T.title, T.hostname, T.hostname2]],
    ['settings', () => hashOf.settings, [T.groupDescription, T.secretName, T.webhook]],
  ];

  it('shows every hostile text literally on every page, and runs none of it', async () => {
    const problems: string[] = [];
    for (const [name, hash, shown] of pages) {
      await page.goto(`${server.url}/${hash()}`);
      await waitLoaded(page);
      const norm = (s: string) => s.replace(/\s+/g, ' ');
      const missing = async () => {
        const text = norm(await visibleText());
        return shown.filter((s) => !text.includes(norm(s)));
      };
      await until(`${name} to show ${shown.length} hostile texts`, async () => (await missing()).length === 0, 10_000).catch(async () => {
        problems.push(`${name}: not shown as text: ${(await missing()).map((s) => JSON.stringify(s)).join(', ')}`);
      });
      // nothing from the payloads became an element
      const injected = await page.evaluate(() => {
        const d = (globalThis as unknown as { document: { querySelectorAll: (s: string) => ArrayLike<unknown> } }).document;
        return d.querySelectorAll('main img[src="x"], main svg[onload], main [onerror], main script, a[href^="javascript:"]').length;
      });
      if (injected) problems.push(`${name}: ${injected} elements made from the payloads`);
      const state = await page.evaluate(() => {
        const g = globalThis as unknown as { __pwned?: unknown; __csp?: string[] };
        return { pwned: g.__pwned, csp: g.__csp ?? [] };
      });
      if (state.pwned !== undefined) problems.push(`${name}: window.__pwned = ${String(state.pwned)}`);
      if (state.csp.length) problems.push(`${name}: CSP violations: ${state.csp.join(' | ')}`);
    }
    expect(problems, problems.join('\n')).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(csp).toEqual([]);
  }, BROWSER_TEST_MS);

  it('opens every device and the patch relations without running anything', async () => {
    for (const id of Object.values(ids)) {
      await page.goto(`${server.url}/${hashOf.device(id)}`);
      await waitLoaded(page);
      // the "why" panel renders the rule trace and the facts it read
      const why = page.getByRole('button', { name: /^Why\?/ }).first();
      if (await why.count()) {
        await why.click();
        await page.waitForTimeout(300);
      }
      expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    }
    expect(dialogs).toEqual([]);
  }, BROWSER_TEST_MS);

  it('the watch is wired: a payload put into the page as HTML is caught', async () => {
    const s = await openPage(browser);
    try {
      await s.page.addInitScript(() => {
        const g = globalThis as unknown as { __csp: string[]; addEventListener: (t: string, f: (e: { violatedDirective: string }) => void) => void };
        g.__csp = [];
        g.addEventListener('securitypolicyviolation', (e) => g.__csp.push(e.violatedDirective));
      });
      await s.page.goto(`${server.url}/`);
      // what a console rendering data as HTML would do
      await s.page.evaluate((html) => {
        const d = (globalThis as unknown as { document: { body: { insertAdjacentHTML: (p: string, h: string) => void } } }).document;
        d.body.insertAdjacentHTML('beforeend', html);
      }, T.hostname);
      const caught = await until('the violation to be reported', async () => {
        const c = await s.page.evaluate(() => (globalThis as unknown as { __csp: string[] }).__csp);
        return c.length > 0 ? c : undefined;
      }, 5_000);
      expect(caught.join(' ')).toMatch(/script-src/);
      // the policy held: nothing ran
      expect(await s.page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    } finally {
      await s.context.close();
    }
  }, BROWSER_TEST_MS);

  it('logged no error in the browser console', () => {
    expect(w.errors, w.errors.join('\n')).toEqual([]);
  });
});

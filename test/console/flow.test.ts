/**
 * The console's main story in a real browser, against a real server and two real agents (sandbox
 * roots with dpkg, enrolled with --installs, acting only when the test runs `agent run --once`):
 * sign in with the admin token, find a device by search, open it, see why a patch is needed,
 * approve the patch for the group on its page, create a deployment in two rings with the preview
 * showing them, watch its progress change while the page stays open (no reload), undo it,
 * export the needed-patches report as CSV and PDF (the PDF holds the CSV's rows), and see a
 * patch title made of HTML shown as text, and approve a machine's second enrollment from its
 * device page. Last, screenshots of the main pages at 1366×768:
 * into docs/screenshots/ when PATCHWARDEN_SCREENSHOTS=1, else into the test's temporary folder.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { packageStates } from '../support/patching.js';
import { api, ROOT } from '../support/processes.js';
import { BROWSER_TEST_MS, describeBrowser, hashOf, launchBrowser, openPage, pdftotextAvailable, signIn, until, waitLoaded, type WatchedPage } from './browser.js';
import { GROUP, HOSTILE, HOSTILE_TITLE, neededOn, P1, P1_TITLE, startFleet, type Fleet } from './fleet.js';

const HOSTS = ['alpha', 'beta'];

/** RFC 4180 CSV (quoted fields, doubled quotes, CRLF) into rows of cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  if (cell !== '' || row.length) rows.push([...row, cell]);
  return rows;
}

const occurrences = (hay: string, needle: string) => hay.split(needle).length - 1;

describeBrowser('console flow: a real server, real agents, a real browser', () => {
  let fleet: Fleet;
  let browser: Browser;
  let w: WatchedPage;
  let page: Page;
  let deployment: string;
  const shots = process.env.PATCHWARDEN_SCREENSHOTS === '1' ? join(ROOT, 'docs/screenshots') : '';
  const shotDir = () => shots || join(fleet.dir, 'screenshots');
  const pwned = () => page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned);

  beforeAll(async () => {
    [fleet, browser] = await Promise.all([startFleet(HOSTS, 'pw-console-flow-'), launchBrowser()]);
    for (const h of HOSTS) expect(await neededOn(fleet, h)).toEqual([P1, HOSTILE].sort());
    w = await openPage(browser, { downloads: true });
    page = w.page;
    mkdirSync(shotDir(), { recursive: true });
  }, BROWSER_TEST_MS);

  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  it('signs in with the admin token on the sign-in page', async () => {
    await page.goto(`${fleet.server.url}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await signIn(page, fleet.server);
    await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  }, BROWSER_TEST_MS);

  it('finds a device by search and opens it', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Devices' }).click();
    await page.getByRole('heading', { level: 1, name: 'Devices' }).waitFor();
    await page.getByRole('searchbox', { name: 'Search devices' }).fill('bet');
    const table = page.getByRole('table', { name: 'Devices' });
    await table.getByRole('link', { name: 'beta', exact: true }).waitFor();
    await until('the search to leave only beta', async () => (await table.getByRole('link', { name: 'alpha', exact: true }).count()) === 0);
    await table.getByRole('link', { name: 'beta', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'beta' }).waitFor();
    expect(page.url()).toContain(hashOf.device(fleet.ids.beta!));
  }, BROWSER_TEST_MS);

  it('shows why a patch is needed on the device', async () => {
    const needed = page.getByRole('table', { name: 'Patches beta needs' });
    await needed.getByRole('row', { name: new RegExp(P1) }).waitFor();
    const why = needed.getByRole('button', { name: `Why? ${P1} is needed` });
    await why.click();
    expect(await why.getAttribute('aria-expanded')).toBe('true');
    const panel = page.locator(`[id="${await why.getAttribute('aria-controls')}"]`);
    await panel.getByRole('heading', { name: 'Installed' }).waitFor();
    await until('the rule trace', async () => {
      const t = await panel.textContent();
      return !!t && t.includes('pw-demo') && t.includes('1.0-2') && !/Loading/.test(t);
    });
    const text = (await panel.textContent())!;
    // the installed rule compared the device's version with the fixed one, and said no
    expect(text).toMatch(/false/);
  }, BROWSER_TEST_MS);

  it('approves the patch for the group on the patch page', async () => {
    await page.getByRole('table', { name: 'Patches beta needs' }).getByRole('link', { name: P1, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: P1 }).waitFor();
    await page.getByRole('heading', { name: P1_TITLE }).waitFor();
    const approvals = page.getByRole('table', { name: `Approvals of ${P1} by group` });
    const approve = approvals.getByRole('button', { name: `Approve for ${GROUP}` });
    await approve.click();
    await until('the approval to show', async () => approve.isDisabled());
    const r = await api<{ items: { patch: string; group: string; decision: string }[] }>(fleet.server, 'GET', `/api/v1/approvals?patch=${encodeURIComponent(P1)}`);
    expect(r.body.items.map((a) => [a.patch, a.group, a.decision])).toEqual([[P1, GROUP, 'approve']]);
  }, BROWSER_TEST_MS);

  it('creates a deployment in two rings on the deployments page, with the ring preview', async () => {
    // the patch page links here with the patch filled in; this goes the long way, from the list
    expect(await page.getByRole('link', { name: 'Deploy this patch' }).getAttribute('href')).toBe(`${hashOf.newDeployment}?patch=${encodeURIComponent(P1)}`);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Deployments' }).click();
    await page.getByRole('heading', { level: 1, name: 'Deployments' }).waitFor();
    await page.getByRole('link', { name: 'New deployment' }).click();
    await page.getByRole('heading', { level: 1, name: 'New deployment' }).waitFor();
    await page.getByLabel('Patch IDs').fill(P1);
    await page.getByRole('group', { name: 'Groups', exact: true }).getByRole('checkbox', { name: GROUP }).check();
    await page.getByLabel('Ring 1 name').fill('canary');
    await page.getByLabel('Ring 1 percent of devices').fill('50');
    await page.getByLabel('Ring 1 bake minutes').fill('0');
    await page.getByRole('button', { name: 'Add a ring' }).click();
    await page.getByLabel('Ring 2 name').fill('everyone');
    await page.getByLabel('Ring 2 bake minutes').fill('0');
    const preview = page.getByRole('region', { name: 'Preview' });
    // "2 devices (needing a patch) in 2 rings, 2 jobs."
    await preview.getByText(/\b2 devices\b[^.]* in 2 rings, 2 jobs\./).waitFor();
    await preview.getByText(/canary: 1 devices, 1 jobs/).waitFor();
    await preview.getByText(/everyone: 1 devices, 1 jobs/).waitFor();
    if (shots) await page.screenshot({ path: join(shotDir(), 'new-deployment.png') });
    await page.getByRole('button', { name: 'Create deployment' }).click();
    await page.getByRole('heading', { level: 1, name: /^Deployment / }).waitFor();
    deployment = decodeURIComponent(/#\/deployments\/([^/?]+)/.exec(page.url())![1]!);
    const d = await api<{ patches: string[]; rings: { name: string; counts: { total: number } }[] }>(fleet.server, 'GET', `/api/v1/deployments/${deployment}`);
    expect(d.body.patches).toEqual([P1]);
    expect(d.body.rings.map((r) => [r.name, r.counts.total])).toEqual([['canary', 1], ['everyone', 1]]);
  }, BROWSER_TEST_MS);

  it('shows the progress change live while agents install (no reload)', async () => {
    const bar = page.getByRole('progressbar', { name: 'Finished install jobs' });
    const value = () => bar.evaluate((e) => Number((e as unknown as { value: number }).value));
    await bar.waitFor();
    expect(await value()).toBe(0);
    // a mark in this document: it disappears if anything reloads the page
    await page.evaluate(() => ((globalThis as { __sameDocument?: number }).__sameDocument = 1));
    const finished = async (n: number) => until(`the page to show ${n} finished`, async () => (await value()) >= n, 30_000);
    // ring 1's device installs; ring 2's waits for ring 1
    await Promise.all(HOSTS.map((h) => fleet.runOnce(h)));
    await finished(1);
    await page.getByText(/^1 \/ 2$/).waitFor();
    await Promise.all(HOSTS.map((h) => fleet.runOnce(h)));
    await finished(2);
    await page.getByText(/^2 \/ 2$/).waitFor();
    expect(await page.evaluate(() => (globalThis as { __sameDocument?: number }).__sameDocument)).toBe(1);
    for (const h of HOSTS) expect(packageStates(fleet.roots[h]!, ['pw-demo'])).toEqual({ 'pw-demo': '1.0-2 ii' });
    await waitLoaded(page);
    await page.screenshot({ path: join(shotDir(), 'deployment.png') });
  }, BROWSER_TEST_MS);

  it('undoes the deployment', async () => {
    await page.getByRole('button', { name: 'Undo deployment' }).click();
    const dialog = page.getByRole('dialog', { name: 'Undo the whole deployment?' });
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Undo deployment' }).click();
    await until('the undo button to go', async () => (await page.getByRole('button', { name: 'Undo deployment' }).count()) === 0, 30_000);
    await Promise.all(HOSTS.map((h) => fleet.runOnce(h)));
    await until('both undo jobs to finish', async () => {
      const j = await api<{ items: { kind: string; state: string }[] }>(fleet.server, 'GET', `/api/v1/deployments/${deployment}/jobs?limit=100`);
      const undo = j.body.items.filter((x) => x.kind === 'undo');
      return undo.length === 2 && undo.every((x) => x.state === 'done');
    }, 60_000);
    for (const h of HOSTS) expect(packageStates(fleet.roots[h]!, ['pw-demo'])).toEqual({ 'pw-demo': '1.0-1 ii' });
    // the page follows without a reload
    await page.getByText(/2 done/).waitFor({ timeout: 30_000 });
    for (const h of HOSTS) await until(`${h} to need ${P1} again`, async () => (await neededOn(fleet, h)).includes(P1));
  }, BROWSER_TEST_MS);

  it('exports the needed-patches report as CSV and PDF with the same rows', async () => {
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('heading', { level: 1, name: 'Reports' }).waitFor();
    await waitLoaded(page, page.getByRole('table', { name: 'Needed patches by device' }));
    const download = async (button: string, file: string) => {
      const [d] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: button }).click()]);
      const path = join(fleet.dir, file);
      await d.saveAs(path);
      return { path, name: d.suggestedFilename() };
    };
    const csv = await download('Download CSV', 'needed.csv');
    const pdf = await download('Download PDF', 'needed.pdf');
    expect(csv.name).toMatch(/^patchwarden-needed-by-device-.*\.csv$/);
    expect(pdf.name).toMatch(/^patchwarden-needed-by-device-.*\.pdf$/);
    const rows = parseCsv(readFileSync(csv.path, 'utf8'));
    const [header, ...body] = rows;
    expect(header).toEqual(['hostname', 'patch id', 'title', 'severity']);
    expect(body.map((r) => `${r[0]} ${r[1]}`).sort()).toEqual(HOSTS.flatMap((h) => [`${h} ${P1}`, `${h} ${HOSTILE}`]).sort());
    expect(body.find((r) => r[1] === HOSTILE)?.[2]).toBe(HOSTILE_TITLE);
    expect(readFileSync(pdf.path).subarray(0, 5).toString()).toBe('%PDF-');
    if (!pdftotextAvailable()) throw new Error('pdftotext is missing: apt-get install poppler-utils (.ci/run installs it)');
    const text = execFileSync('pdftotext', [pdf.path, '-'], { encoding: 'utf8' });
    const flat = text.replace(/\s+/g, ' ');
    // every row's cells are in the PDF, as often as in the CSV
    for (const id of new Set(body.map((r) => r[1]!))) expect(occurrences(flat, id), `${id} in the PDF`).toBe(body.filter((r) => r[1] === id).length);
    for (const h of HOSTS) expect(occurrences(flat, h), `${h} in the PDF`).toBe(body.filter((r) => r[0] === h).length);
    expect(occurrences(flat, P1_TITLE)).toBe(body.filter((r) => r[2] === P1_TITLE).length);
    expect(occurrences(flat, 'critical')).toBeGreaterThanOrEqual(body.filter((r) => r[3] === 'critical').length);
  }, BROWSER_TEST_MS);

  it('shows a patch title made of HTML as text, and runs none of it', async () => {
    for (const [where, hash] of [['dashboard', hashOf.dashboard], ['reports', `${hashOf.reports}?by=patch`], ['device', hashOf.device(fleet.ids.alpha!)], ['patches', hashOf.patches], ['patch', hashOf.patch(HOSTILE)]] as const) {
      await page.goto(`${fleet.server.url}/${hash}`);
      await waitLoaded(page);
      const title = page.getByText(HOSTILE_TITLE, { exact: true }).first();
      await title.waitFor({ timeout: 15_000 }).catch(() => {
        throw new Error(`${where}: the hostile title is not shown as text`);
      });
      expect(await title.isVisible(), where).toBe(true);
      expect(await pwned(), `${where}: window.__pwned`).toBeUndefined();
      expect(await page.locator('main img[src="x"]').count(), `${where}: an <img> from the title`).toBe(0);
    }
  }, BROWSER_TEST_MS);

  it("approves a machine's second enrollment from the device page; the older record is revoked", async () => {
    const secret = (await api<{ secret: string }>(fleet.server, 'POST', '/api/v1/enrollment-secrets', { name: 'reinstalls' })).body.secret;
    const system = {
      hostname: 'reinstalled',
      os: { family: 'linux', distribution: 'debian', prettyName: 'Debian GNU/Linux 12 (bookworm)', version: '12', machine: 'x86_64', packageArch: 'amd64' },
      kernel: { release: '6.1.0-28-amd64' },
      machineId: 'feedc0de'.repeat(4),
      rebootRequired: false,
      agentVersion: '0.1.0',
      collectors: [],
    };
    const enroll = async () => {
      const r = await fetch(`${fleet.server.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ secret, system, publicKey: 'ab'.repeat(32) }) });
      expect(r.status).toBe(200);
      return (await r.json()) as { deviceId: string; status: string };
    };
    const first = await enroll();
    const second = await enroll();
    expect([first.status, second.status]).toEqual(['active', 'pending']);
    await page.goto(`${fleet.server.url}/${hashOf.device(second.deviceId)}`);
    const notice = page.getByRole('region', { name: 'Waiting for approval' });
    await notice.waitFor();
    await notice.getByRole('button', { name: 'Approve this enrollment' }).click();
    await until('the device to be active', async () => (await page.locator('.page-header .badge').textContent()) === 'active');
    expect(await notice.count()).toBe(0);
    const old = await api<{ status: string }>(fleet.server, 'GET', `/api/v1/devices/${first.deviceId}`);
    expect(old.body.status).toBe('revoked');
  }, BROWSER_TEST_MS);

  it('logged no error in the browser console along the way', () => {
    expect(w.errors, w.errors.join('\n')).toEqual([]);
  });

  it('takes screenshots of the main pages at 1366×768', async () => {
    const pages: [string, string][] = [
      ['dashboard', hashOf.dashboard],
      ['devices', hashOf.devices],
      ['device', hashOf.device(fleet.ids.beta!)],
      ['patches', hashOf.patches],
      ['patch', hashOf.patch(P1)],
      ['reports', hashOf.reports],
      ['settings', hashOf.settings],
    ];
    for (const [name, hash] of pages) {
      await page.goto(`${fleet.server.url}/${hash}`);
      await waitLoaded(page);
      await page.evaluate(() => new Promise((r) => setTimeout(r, 300))); // charts settle
      await page.screenshot({ path: join(shotDir(), `${name}.png`) });
    }
  }, BROWSER_TEST_MS);
});

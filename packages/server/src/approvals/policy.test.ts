import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PackageFact } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages, packagePatch } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';
import { runPolicyPass } from './policy.js';

const bookworm = [{ family: 'linux', distribution: 'debian', release: 'bookworm', arch: ['amd64'] }];

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`the periodic policy pass on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages());
    const pk = (i: number) => inv.packages[i]!;

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
      const up = await h.admin('POST', '/api/v1/catalog/patches', {
        patches: [packagePatch('test/expl-1', pk(3).name, `${pk(3).version}+fix1`, { severity: 'medium', cves: ['CVE-2026-7777'] })],
        coverage: bookworm,
        source: { kind: 'test' },
      });
      expect(up.statusCode, up.body).toBe(200);
      expect((await h.admin('POST', '/api/v1/groups', { name: 'web' })).statusCode).toBe(201);
      const d = await h.enroll({ hostname: 'web-1', group: 'web' });
      expect((await h.checkin(d.token, checkinBody(systemFacts('web-1'), { mode: 'full', ...hashed(inv.packages as PackageFact[]) }))).statusCode).toBe(200);
      const hook = await h.admin('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/hook', events: ['patch.exploited-needed'] });
      expect(hook.statusCode, hook.body).toBe(201);
      expect((await h.admin('POST', '/api/v1/approval-rules', { group: 'web', exploitedOnly: true })).statusCode).toBe(201);
    });
    afterAll(async () => h?.close());

    it('approves by rule and announces an exploited, needed patch once per revision', async () => {
      let r = await runPolicyPass(h.database.db, h.clock.now);
      expect(r).toEqual({ approved: [], announced: [] });
      expect((await h.admin('POST', '/api/v1/cves/CVE-2026-7777/exploited', { exploited: true })).statusCode).toBe(200);
      r = await runPolicyPass(h.database.db, h.clock.now);
      expect(r.approved.map((a) => [a.patch, a.group])).toEqual([['test/expl-1', 'web']]);
      expect(r.announced).toEqual(['test/expl-1']);
      const deliveries = await h.database.db.selectFrom('webhook_deliveries').select(['event', 'body']).execute();
      expect(deliveries).toHaveLength(1);
      expect(JSON.parse(deliveries[0]!.body).data).toMatchObject({ patch: { id: 'test/expl-1' }, cves: ['CVE-2026-7777'], devicesNeeding: 1 });
      // the next pass has nothing new to say
      r = await runPolicyPass(h.database.db, h.clock.now);
      expect(r).toEqual({ approved: [], announced: [] });
      expect(await h.database.db.selectFrom('webhook_deliveries').select('id').execute()).toHaveLength(1);
    });
  });
}

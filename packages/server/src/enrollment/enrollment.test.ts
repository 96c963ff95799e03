import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEnrollmentString } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { makeHarness, systemFacts, type Harness } from '../testing/harness.js';

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`enrollment secrets that expire and run out, on ${tdb.name}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
    });
    afterAll(async () => h?.close());
    const enroll = (secret: string) => h.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret, system: systemFacts('x') } });

    it('answers an enrollment string with the root fingerprint (no CA over plain HTTP), and stops at the expiry', async () => {
      const r = await h.admin('POST', '/api/v1/enrollment-secrets', { name: 'week', expiresInDays: 7 });
      expect(r.statusCode).toBe(201);
      const s = r.json() as { secret: string; enrollmentString: string; expiresAt: string };
      expect(s.expiresAt).toBe(new Date(h.clock.now + 7 * 86_400_000).toISOString());
      const parsed = parseEnrollmentString(s.enrollmentString);
      expect(parsed).toEqual({ secret: s.secret, caSha256: null, rootSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect((await enroll(s.secret)).statusCode).toBe(200);
      h.clock.now += 7 * 86_400_000;
      const late = await enroll(s.secret);
      expect(late.statusCode).toBe(401);
      expect(late.json().error).toMatchObject({ code: 'E_ENROLLMENT_SECRET_INVALID', message: expect.stringMatching(/expired on/) });
    });

    it('gives the last use of a limited secret to one of many devices enrolling at once', async () => {
      const s = (await h.admin('POST', '/api/v1/enrollment-secrets', { name: 'three', maxUses: 3 })).json() as { id: string; secret: string };
      const codes = (await Promise.all(Array.from({ length: 10 }, () => enroll(s.secret)))).map((r) => r.statusCode);
      expect(codes.filter((c) => c === 200)).toHaveLength(3);
      expect(codes.filter((c) => c === 401)).toHaveLength(7);
      const listed = ((await h.admin('GET', '/api/v1/enrollment-secrets')).json().items as { id: string; uses: number; maxUses: number }[]).find((x) => x.id === s.id)!;
      expect(listed).toMatchObject({ uses: 3, maxUses: 3 });
      const devices = (await h.admin('GET', '/api/v1/devices?limit=100')).json().total as number;
      expect(devices).toBe(4);
    });
  });
}

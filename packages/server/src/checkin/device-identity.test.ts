/**
 * Device identity, tried as an attacker and as an administrator would: a device's requests are
 * signed with its own key, so a copied token (or the whole database) does not let anyone speak
 * as it; a captured request is accepted once; clocks may be a few minutes off, not more; the
 * same machine enrolling again waits for approval; two machines with one identity are flagged.
 */
import { gzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { DEVICE_SIGNATURE_HEADERS, deviceSigner, EMPTY_BODY_SHA256, sha256Hex, SIGNATURE_SKEW_MS, type DeviceKeyPair } from '@patchwarden/core';
import { testDatabases } from '../testing/databases.js';
import { hashed, hostPackages } from '../testing/fixtures.js';
import { checkinBody, makeHarness, systemFacts, type Harness } from '../testing/harness.js';

function keyPair(): DeviceKeyPair {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  return { privateKey: Buffer.from(jwk.d!, 'base64url').toString('hex'), publicKey: Buffer.from(jwk.x!, 'base64url').toString('hex') };
}

interface Signed {
  method: 'GET' | 'POST';
  url: string;
  headers: Record<string, string>;
  payload?: Buffer;
}

/** A request as the agent makes it: bearer token plus the three signature headers over the body as sent. */
function signed(pair: DeviceKeyPair, token: string, method: 'GET' | 'POST', url: string, body: unknown, at: number, opts: { gzip?: boolean; nonce?: string } = {}): Signed {
  let payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (payload) {
    headers['content-type'] = 'application/json';
    if (opts.gzip) {
      payload = gzipSync(payload);
      headers['content-encoding'] = 'gzip';
    }
  }
  const nonce = opts.nonce ?? randomBytes(18).toString('base64url');
  headers[DEVICE_SIGNATURE_HEADERS.date] = String(at);
  headers[DEVICE_SIGNATURE_HEADERS.nonce] = nonce;
  headers[DEVICE_SIGNATURE_HEADERS.signature] = deviceSigner(pair)({ method, path: url, date: at, nonce, bodySha256: payload ? sha256Hex(payload) : EMPTY_BODY_SHA256 });
  return { method, url, headers, ...(payload ? { payload } : {}) };
}

for (const tdb of testDatabases) {
  describe.skipIf(!tdb.available)(`device identity on ${tdb.name}`, () => {
    let h: Harness;
    const inv = hashed(hostPackages().slice(0, 40));

    beforeAll(async () => {
      h = await makeHarness(await tdb.open());
    });
    afterAll(async () => h?.close());

    async function enrollWithKey(hostname: string, opts: { machineId?: string } = {}) {
      const pair = keyPair();
      const s = await h.admin('POST', '/api/v1/enrollment-secrets', { name: `for ${hostname}`, group: null });
      const system = { ...systemFacts(hostname), ...(opts.machineId ? { machineId: opts.machineId } : {}) };
      const r = await h.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret: s.json().secret, system, publicKey: pair.publicKey } });
      expect(r.statusCode, r.body).toBe(200);
      const body = r.json() as { deviceId: string; token: string; status: string };
      return { ...body, pair, system };
    }
    const send = (req: Signed) => h.app.inject({ method: req.method, url: req.url, headers: req.headers, ...(req.payload ? { payload: req.payload } : {}) });
    const firstCheckin = (system: ReturnType<typeof systemFacts>) => ({ ...checkinBody(system, { mode: 'full', hash: inv.hash, packages: inv.packages }), sequence: 1 });
    const lastSeen = async (id: string) => (await h.database.db.selectFrom('devices').select('last_seen_at').where('id', '=', id).executeTakeFirstOrThrow()).last_seen_at;

    it('accepts a signed check-in, plain or gzip-compressed, and refuses the token alone: a copied token or database is not the device', async () => {
      const d = await enrollWithKey('signer-1');
      expect(d.status).toBe('active');
      const stored = await h.database.db.selectFrom('devices').select(['public_key', 'token_hash']).where('id', '=', d.deviceId).executeTakeFirstOrThrow();
      expect(stored.public_key).toBe(d.pair.publicKey);
      // the database holds the public key and a hash of the token: neither signs
      expect(stored.token_hash).not.toContain(d.token);

      const unsigned = await h.checkin(d.token, firstCheckin(d.system));
      expect(unsigned.statusCode).toBe(401);
      expect(unsigned.json().error.code).toBe('E_REQUEST_SIGNATURE');
      expect(await lastSeen(d.deviceId)).toBeNull();

      // an attacker with the token who signs with a key of their own
      const forged = await send(signed(keyPair(), d.token, 'POST', '/api/v1/agent/checkin', firstCheckin(d.system), h.clock.now));
      expect(forged.statusCode).toBe(401);
      expect(forged.json().error.code).toBe('E_REQUEST_SIGNATURE');
      expect(await lastSeen(d.deviceId)).toBeNull();

      const ok = await send(signed(d.pair, d.token, 'POST', '/api/v1/agent/checkin', firstCheckin(d.system), h.clock.now, { gzip: true }));
      expect(ok.statusCode, ok.body).toBe(200);
      expect(await lastSeen(d.deviceId)).toBe(h.clock.now);
      const again = await send(signed(d.pair, d.token, 'POST', '/api/v1/agent/checkin', { ...checkinBody(undefined, { mode: 'same', hash: inv.hash }, ok.json().systemHash), sequence: 2 }, h.clock.now));
      expect(again.statusCode, again.body).toBe(200);
      // reads are signed too: the device's job queue
      const jobs = await send(signed(d.pair, d.token, 'GET', '/api/v1/agent/jobs?wait=0&installs=false', undefined, h.clock.now));
      expect(jobs.statusCode, jobs.body).toBe(200);
    });

    it('refuses a changed body, path or method under a valid signature, and a malformed signature, with nothing applied', async () => {
      const d = await enrollWithKey('signer-2');
      const good = signed(d.pair, d.token, 'POST', '/api/v1/agent/checkin', firstCheckin(d.system), h.clock.now);
      const changedBody = Buffer.from(good.payload!.toString('utf8').replace('signer-2', 'signer-X'));
      const attempts: Signed[] = [
        { ...good, payload: changedBody },
        { ...good, url: '/api/v1/agent/checkin?x=1' },
        { ...good, headers: { ...good.headers, [DEVICE_SIGNATURE_HEADERS.signature]: 'A'.repeat(86) } },
        { ...good, headers: { ...good.headers, [DEVICE_SIGNATURE_HEADERS.signature]: '' } },
        { ...good, headers: { ...good.headers, [DEVICE_SIGNATURE_HEADERS.date]: 'yesterday' } },
        { ...good, headers: { ...good.headers, [DEVICE_SIGNATURE_HEADERS.nonce]: 'short' } },
        { ...good, headers: { ...good.headers, [DEVICE_SIGNATURE_HEADERS.date]: String(h.clock.now + 1) } },
      ];
      for (const a of attempts) {
        const r = await send(a);
        expect(r.statusCode, r.body).toBe(401);
        expect(r.json().error.code).toBe('E_REQUEST_SIGNATURE');
      }
      expect(await lastSeen(d.deviceId)).toBeNull();
      // the untouched request still works (none of the refusals used up its nonce)
      const r = await send(good);
      expect(r.statusCode, r.body).toBe(200);
    });

    it('accepts a captured request once: a replay is refused, also with the same nonce on another request', async () => {
      const d = await enrollWithKey('replayed');
      const req = signed(d.pair, d.token, 'POST', '/api/v1/agent/checkin', firstCheckin(d.system), h.clock.now);
      expect((await send(req)).statusCode).toBe(200);
      const before = await lastSeen(d.deviceId);
      h.clock.now += 30_000;
      const replay = await send(req);
      expect(replay.statusCode).toBe(401);
      expect(replay.json().error.code).toBe('E_REPLAYED');
      expect(await lastSeen(d.deviceId)).toBe(before);
      const nonce = req.headers[DEVICE_SIGNATURE_HEADERS.nonce]!;
      const sameNonce = await send(signed(d.pair, d.token, 'GET', '/api/v1/agent/jobs?wait=0&installs=false', undefined, h.clock.now - 30_000, { nonce }));
      expect(sameNonce.json().error.code).toBe('E_REPLAYED');
      // once its clock could no longer pass, the replay is refused for the clock, and its nonce is swept
      h.clock.now += SIGNATURE_SKEW_MS + 1000;
      const late = await send(req);
      expect(late.json().error.code).toBe('E_CLOCK_SKEW');
    });

    it(`tolerates a device clock up to ${SIGNATURE_SKEW_MS / 60_000} minutes off either way, and tells a device further off the server's time`, async () => {
      const d = await enrollWithKey('drifting');
      const at = (offset: number) => send(signed(d.pair, d.token, 'GET', '/api/v1/agent/jobs?wait=0&installs=false', undefined, h.clock.now + offset));
      for (const offset of [SIGNATURE_SKEW_MS - 1000, -(SIGNATURE_SKEW_MS - 1000), 0]) expect((await at(offset)).statusCode).toBe(200);
      for (const offset of [SIGNATURE_SKEW_MS + 1000, -(SIGNATURE_SKEW_MS + 1000), 3 * 3_600_000]) {
        const r = await at(offset);
        expect(r.statusCode).toBe(401);
        const e = r.json().error;
        expect(e.code).toBe('E_CLOCK_SKEW');
        expect(e.details.serverTime).toBe(h.clock.now);
        expect(e.message).toMatch(offset > 0 ? /ahead of/ : /behind/);
      }
    });

    it('moves a device enrolled before device keys to signed requests once, and never lets a token holder replace its key', async () => {
      const legacy = await h.enroll({ hostname: 'legacy-1' });
      const body = checkinBody(systemFacts('legacy-1'), { mode: 'full', hash: inv.hash, packages: inv.packages });
      expect((await h.checkin(legacy.token, body)).statusCode).toBe(200);
      const shown = await h.admin('GET', `/api/v1/devices/${legacy.deviceId}`);
      expect(shown.json().identity).toEqual({ signed: false, duplicateOf: null, cloneSuspectedAt: null });

      const pair = keyPair();
      const reg = await h.app.inject({ method: 'POST', url: '/api/v1/agent/key', headers: { authorization: `Bearer ${legacy.token}` }, payload: { publicKey: pair.publicKey } });
      expect(reg.statusCode, reg.body).toBe(200);
      // the same key again (an answer lost on the way) is fine, signed as it now must be
      const again = await send(signed(pair, legacy.token, 'POST', '/api/v1/agent/key', { publicKey: pair.publicKey }, h.clock.now));
      expect(again.statusCode, again.body).toBe(200);
      // from now on the token alone is refused
      const unsigned = await h.checkin(legacy.token, body);
      expect(unsigned.json().error.code).toBe('E_REQUEST_SIGNATURE');
      // a token holder cannot swap in a key of their own: unsigned is refused, and even the device itself cannot replace it
      const attacker = keyPair();
      const swap = await h.app.inject({ method: 'POST', url: '/api/v1/agent/key', headers: { authorization: `Bearer ${legacy.token}` }, payload: { publicKey: attacker.publicKey } });
      expect(swap.json().error.code).toBe('E_REQUEST_SIGNATURE');
      const swapSigned = await send(signed(pair, legacy.token, 'POST', '/api/v1/agent/key', { publicKey: attacker.publicKey }, h.clock.now));
      expect(swapSigned.statusCode).toBe(409);
      expect(swapSigned.json().error.code).toBe('E_CONFLICT');
      const stored = await h.database.db.selectFrom('devices').select('public_key').where('id', '=', legacy.deviceId).executeTakeFirstOrThrow();
      expect(stored.public_key).toBe(pair.publicKey);
      expect((await h.admin('GET', `/api/v1/devices/${legacy.deviceId}`)).json().identity.signed).toBe(true);
      const events = (await h.admin('GET', `/api/v1/devices/${legacy.deviceId}/events`)).json().items as { kind: string }[];
      expect(events.map((e) => e.kind)).toContain('key-registered');
    });

    it('holds a second enrollment of an active machine for approval; approving it revokes the older record', async () => {
      const machineId = randomBytes(16).toString('hex');
      const first = await enrollWithKey('reinstalled', { machineId });
      expect(first.status).toBe('active');
      const second = await enrollWithKey('reinstalled', { machineId });
      expect(second.status).toBe('pending');

      const waiting = await send(signed(second.pair, second.token, 'POST', '/api/v1/agent/checkin', firstCheckin(second.system), h.clock.now));
      expect(waiting.statusCode).toBe(403);
      expect(waiting.json().error.code).toBe('E_DEVICE_PENDING');
      expect(await lastSeen(second.deviceId)).toBeNull();
      const pending = await h.admin('GET', '/api/v1/devices?status=pending');
      expect(pending.json().items.map((d: { id: string }) => d.id)).toEqual([second.deviceId]);
      expect(pending.json().items[0].identity.duplicateOf).toBe(first.deviceId);

      const ok = await h.admin('POST', `/api/v1/devices/${second.deviceId}/approve`, {});
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toMatchObject({ device: { id: second.deviceId, status: 'active' }, revoked: first.deviceId });
      expect((await send(signed(second.pair, second.token, 'POST', '/api/v1/agent/checkin', firstCheckin(second.system), h.clock.now))).statusCode).toBe(200);
      const old = await send(signed(first.pair, first.token, 'POST', '/api/v1/agent/checkin', firstCheckin(first.system), h.clock.now));
      expect(old.json().error.code).toBe('E_DEVICE_REVOKED');
      // nothing left to approve
      const twice = await h.admin('POST', `/api/v1/devices/${second.deviceId}/approve`, {});
      expect(twice.json().error.code).toBe('E_CONFLICT');

      // with keepOriginal both stay active (two machines sharing an identity by design)
      const third = await enrollWithKey('reinstalled', { machineId });
      expect(third.status).toBe('pending');
      const keep = await h.admin('POST', `/api/v1/devices/${third.deviceId}/approve`, { keepOriginal: true });
      expect(keep.json()).toMatchObject({ device: { status: 'active' }, revoked: null });
      // and a pending record can be refused like any device
      const fourth = await enrollWithKey('reinstalled', { machineId });
      const refused = await h.admin('POST', `/api/v1/devices/${fourth.deviceId}/revoke`);
      expect(refused.json().status).toBe('revoked');
    });

    it('flags two machines that check in with one identity (a count that goes back), and lets an administrator clear it', async () => {
      const d = await enrollWithKey('cloned-vm');
      const post = (sequence: number, body: object) => send(signed(d.pair, d.token, 'POST', '/api/v1/agent/checkin', { ...body, sequence }, h.clock.now));
      const first = await post(1, firstCheckin(d.system));
      expect(first.statusCode).toBe(200);
      const same = checkinBody(undefined, { mode: 'same', hash: inv.hash }, first.json().systemHash);
      expect((await post(2, same)).statusCode).toBe(200);
      expect((await post(3, same)).statusCode).toBe(200);
      expect((await h.admin('GET', `/api/v1/devices/${d.deviceId}`)).json().identity.cloneSuspectedAt).toBeNull();
      // the copy made after check-in 2 sends its own 3: accepted (the device is not locked out) but flagged
      const copy = await post(3, same);
      expect(copy.statusCode).toBe(200);
      const flagged = (await h.admin('GET', `/api/v1/devices/${d.deviceId}`)).json();
      expect(flagged.identity.cloneSuspectedAt).toBe(new Date(h.clock.now).toISOString());
      const events = (await h.admin('GET', `/api/v1/devices/${d.deviceId}/events`)).json().items as { kind: string }[];
      expect(events.filter((e) => e.kind === 'clone-suspected')).toHaveLength(1);
      const cleared = await h.admin('POST', `/api/v1/devices/${d.deviceId}/approve`, {});
      expect(cleared.json().device.identity.cloneSuspectedAt).toBeNull();
      // the count starts afresh
      expect((await post(1, same)).statusCode).toBe(200);
      expect((await h.admin('GET', `/api/v1/devices/${d.deviceId}`)).json().identity.cloneSuspectedAt).toBeNull();
    });

    it('refuses enrollment with a malformed public key, and stores nothing', async () => {
      const s = await h.admin('POST', '/api/v1/enrollment-secrets', { name: 'bad keys', group: null });
      const before = await h.database.db.selectFrom('devices').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      for (const publicKey of ['', 'zz'.repeat(32), 'AB'.repeat(32), '00'.repeat(31), '00'.repeat(33), 42, null]) {
        const r = await h.app.inject({ method: 'POST', url: '/api/v1/enroll', payload: { secret: s.json().secret, system: systemFacts('bad-key'), publicKey } });
        expect(r.statusCode, String(publicKey)).toBe(400);
        expect(r.json().error.code).toBe('E_VALIDATION');
      }
      const after = await h.database.db.selectFrom('devices').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
    });
  });
}

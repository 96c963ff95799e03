import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '@patchwarden/core';
import { loadServerConfig } from '../../config.js';
import { encodeCatalogPath } from './remote-http.js';
import { parseRootPin } from './state.js';

const dir = mkdtempSync(join(tmpdir(), 'pw-pin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const token = `pws_${'a'.repeat(43)}`;

describe('a local server’s configuration', () => {
  it('takes upstream, site token and pinned root from flags or PATCHWARDEN_UPSTREAM*', () => {
    const c = loadServerConfig({ flags: { dataDir: dir, upstream: 'https://central.example:8060', upstreamToken: token, upstreamRoot: 'sha256:' + 'A'.repeat(64) }, env: {} });
    expect(c).toMatchObject({ upstream: 'https://central.example:8060', upstreamToken: token, upstreamRoot: 'sha256:' + 'A'.repeat(64) });
    const e = loadServerConfig({
      flags: { dataDir: dir },
      env: { PATCHWARDEN_UPSTREAM: 'http://10.0.0.1:8060', PATCHWARDEN_UPSTREAM_TOKEN: token, PATCHWARDEN_UPSTREAM_ROOT: 'root.json', PATCHWARDEN_UPSTREAM_SYNC_MINUTES: '0' },
    });
    expect(e.upstreamRoot).toBe(join(process.cwd(), 'root.json'));
    expect(e.upstreamSyncMinutes).toBe(0);
    // air-gapped: a pin alone
    expect(loadServerConfig({ flags: { dataDir: dir, upstreamRoot: `sha256:${'b'.repeat(64)}` }, env: {} }).upstream).toBeUndefined();
  });

  it('refuses an upstream without a token and a pinned root, or what is not one', () => {
    const bad = (flags: Record<string, unknown>) => () => loadServerConfig({ flags: { dataDir: dir, ...flags }, env: {} });
    expect(bad({ upstream: 'https://c', upstreamToken: token })).toThrow(/--upstream-token and --upstream-root/);
    expect(bad({ upstream: 'https://c', upstreamRoot: 'r.json' })).toThrow(/--upstream-token and --upstream-root/);
    expect(bad({ upstreamToken: token })).toThrow(/needs --upstream/);
    expect(bad({ upstream: 'ftp://c', upstreamToken: token, upstreamRoot: 'r.json' })).toThrow(/upstream/);
    expect(bad({ upstream: 'https://c', upstreamToken: 'pwa_admin-token-instead', upstreamRoot: 'r.json' })).toThrow(/site token/);
  });

  it('pins a root from its file (sha256 of the bytes) or from a hash, and refuses anything else', () => {
    const root = Buffer.from(JSON.stringify({ signed: { _type: 'root', version: 1 }, signatures: [] }));
    writeFileSync(join(dir, 'root.json'), root);
    expect(parseRootPin(join(dir, 'root.json'))).toMatchObject({ sha256: sha256Hex(root) });
    expect(parseRootPin(`sha256:${'C'.repeat(64)}`)).toEqual({ sha256: 'c'.repeat(64), from: `sha256:${'C'.repeat(64)}` });
    writeFileSync(join(dir, 'ts.json'), JSON.stringify({ signed: { _type: 'timestamp' } }));
    expect(() => parseRootPin(join(dir, 'ts.json'))).toThrow(/not the catalog's root metadata/);
    expect(() => parseRootPin(join(dir, 'missing.json'))).toThrow(/cannot read the central root/);
    expect(() => parseRootPin('sha256:abc')).toThrow(/cannot read/);
  });

  it('percent-encodes target names per segment, and leaves metadata names as the client spelled them', () => {
    expect(encodeCatalogPath('targets/debian/ab.openssl-3.0.15-1+deb12u1.r1.json')).toBe('targets/debian/ab.openssl-3.0.15-1%2Bdeb12u1.r1.json');
    expect(encodeCatalogPath('metadata/3.a%2Bb.json')).toBe('metadata/3.a%2Bb.json');
  });
});

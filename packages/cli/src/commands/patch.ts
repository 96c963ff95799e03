/**
 * `patchwarden patch`: custom patches on an author's machine (init, build, sign, verify) and
 * in the catalog (publish, list, show, retract). Signing happens here, never on the server.
 */
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { Command } from 'commander';
import {
  buildBundle,
  PATCH_ID_RE,
  PatchwardenError,
  readBundle,
  sha256Hex,
  signBundle,
  verifyBundle,
  type TufPublicKey,
} from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new PatchwardenError('E_NOT_FOUND', `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new PatchwardenError('E_VALIDATION', `${path} is not JSON: ${(err as Error).message}`);
  }
}

function readBundleFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new PatchwardenError('E_NOT_FOUND', `cannot read the bundle ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Writes next to the target and renames, so a failed write never leaves half a bundle. */
function writeAtomic(path: string, bytes: Uint8Array) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes, { mode: 0o644 });
  renameSync(tmp, path);
}

/** Every regular file under `dir`, as bundle payload paths; links and special files refused. */
function payloadFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const full = join(d, name);
      const st = lstatSync(full);
      if (st.isDirectory()) walk(full);
      else if (st.isFile()) out.set(relative(dir, full).split('\\').join('/'), readFileSync(full));
      else throw new PatchwardenError('E_VALIDATION', `${full} is not a regular file (links and special files cannot go into a bundle)`, { hint: 'copy the file itself into payload/' });
    }
  };
  walk(dir);
  return out;
}

function template(id: string) {
  return {
    id,
    revision: 1,
    title: `${id.slice('custom/'.length)}: describe what it fixes`,
    description: 'What the patch changes, and why.',
    vendor: 'Example Corp',
    severity: 'medium',
    platforms: [{ family: 'linux' }],
    applicability: { os: { family: 'linux' } },
    installed: { file: { path: '/opt/example/fixed', exists: true } },
    install: [{ type: 'script', interpreter: 'sh', source: 'install.sh', timeoutSeconds: 300, expectExit: [0] }],
    undo: [{ type: 'script', interpreter: 'sh', source: 'undo.sh', timeoutSeconds: 300, expectExit: [0] }],
    restart: { reboot: 'never', kernel: false },
  };
}

async function trustedKeys(files: string[]): Promise<Map<string, TufPublicKey>> {
  const { readPublicKey } = await import('@patchwarden/server');
  const m = new Map<string, TufPublicKey>();
  for (const f of files) {
    const k = await readPublicKey(f);
    m.set(k.keyid, k.public);
  }
  return m;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function patchCommands(program: Command): void {
  const patch = program
    .command('patch')
    .description('custom patches: scaffold, build, sign and verify bundles; publish, list and retract them')
    .addHelpText(
      'after',
      `
An author's workflow:
  patchwarden keys create alice --role author              once; an administrator runs \`keys trust alice.pub\`
  patchwarden patch init custom/acme-hotfix-12             a folder with manifest.json and payload/
  (edit manifest.json and the files under payload/)
  patchwarden patch build acme-hotfix-12                   → acme-hotfix-12.r1.bundle (unsigned)
  patchwarden patch sign acme-hotfix-12.r1.bundle --key alice.key
  patchwarden patch verify acme-hotfix-12.r1.bundle --key alice.pub
  patchwarden patch publish acme-hotfix-12.r1.bundle --key alice.key`,
    );

  patch
    .command('init <id>')
    .description('scaffold a custom patch: DIR/manifest.json and DIR/payload/ with install and undo scripts')
    .option('--dir <dir>', 'where (default: the name after custom/)')
    .action((id: string, f: { dir?: string }) => {
      if (!id.startsWith('custom/') || !PATCH_ID_RE.test(id)) {
        throw new PatchwardenError('E_VALIDATION', `${JSON.stringify(id)} is not a custom patch id`, { hint: 'custom patch ids look like custom/acme-hotfix-12 (lowercase letters, digits, . _ + ~ -)' });
      }
      const dir = f.dir ?? id.slice('custom/'.length).replaceAll('/', '-');
      if (existsSync(join(dir, 'manifest.json'))) throw new PatchwardenError('E_CONFLICT', `${dir}/manifest.json exists already`, { hint: 'choose another --dir' });
      mkdirSync(join(dir, 'payload'), { recursive: true });
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(template(id), null, 2) + '\n');
      writeFileSync(join(dir, 'payload', 'install.sh'), '#!/bin/sh\nset -eu\nmkdir -p /opt/example\ntouch /opt/example/fixed\n', { mode: 0o755 });
      writeFileSync(join(dir, 'payload', 'undo.sh'), '#!/bin/sh\nset -eu\nrm -f /opt/example/fixed\n', { mode: 0o755 });
      console.log(`created ${dir}/manifest.json and ${dir}/payload/{install,undo}.sh`);
      console.log(`next: edit them, then \`patchwarden patch build ${dir}\``);
    });

  patch
    .command('build <dir>')
    .description("build an unsigned bundle from DIR/manifest.json and the files under DIR/payload/ (their sizes and hashes go into the manifest)")
    .option('--out <file>', 'the bundle file (default NAME.rREV.bundle)')
    .option('--json', 'print JSON')
    .action((dir: string, f: { out?: string; json?: boolean }) => {
      const manifest = readJsonFile(join(dir, 'manifest.json'), 'the manifest') as Record<string, unknown>;
      if (typeof manifest !== 'object' || manifest === null || Array.isArray(manifest)) throw new PatchwardenError('E_VALIDATION', 'manifest.json must hold an object');
      const files = payloadFiles(join(dir, 'payload'));
      manifest.payload = [...files].map(([path, data]) => ({ path, size: data.length, sha256: sha256Hex(data) }));
      const bytes = buildBundle(manifest, files);
      const b = readBundle(bytes);
      const out = f.out ?? `${b.manifest.id.slice(b.manifest.id.indexOf('/') + 1).replaceAll('/', '-')}.r${b.manifest.revision}.bundle`;
      writeAtomic(out, bytes);
      if (f.json) return printJson({ file: out, id: b.manifest.id, revision: b.manifest.revision, digest: b.digest, bytes: bytes.length, payload: b.manifest.payload });
      console.log(`built ${out}: ${b.manifest.id} r${b.manifest.revision}, ${files.size} payload file(s), ${bytes.length} bytes, digest ${b.digest.slice(0, 16)}…`);
      console.log(`next: \`patchwarden patch sign ${out} --key AUTHOR.key\``);
    });

  patch
    .command('sign <bundle>')
    .description("add an author's signature to a bundle (run on the author's machine; the bundle is rewritten in place unless --out)")
    .requiredOption('--key <file>', 'the private key (from `patchwarden keys create`)')
    .option('--out <file>', 'write the signed bundle here instead')
    .action(async (file: string, f: { key: string; out?: string }) => {
      const { readPrivateKey } = await import('@patchwarden/server');
      const key = await readPrivateKey(f.key);
      const signed = signBundle(readBundleFile(file), key);
      writeAtomic(f.out ?? file, signed);
      const b = readBundle(signed);
      console.log(`signed ${b.manifest.id} r${b.manifest.revision} with ${key.name} (${key.keyid.slice(0, 16)}…); ${b.signatures.length} signature(s) now`);
    });

  patch
    .command('verify <bundle>')
    .description('check a bundle: structure, payload hashes, and (with --key) its signatures')
    .option('--key <file>', 'a trusted public key (repeatable)', collect)
    .option('--threshold <n>', 'how many distinct trusted keys must have signed', '1')
    .option('--json', 'print JSON')
    .action(async (file: string, f: { key?: string[]; threshold: string; json?: boolean }) => {
      const bytes = readBundleFile(file);
      const keys = f.key?.length ? await trustedKeys(f.key) : null;
      const b = keys ? verifyBundle(bytes, { trusted: keys, threshold: Number(f.threshold) }) : { ...readBundle(bytes), signers: [] as string[] };
      const out = {
        id: b.manifest.id,
        revision: b.manifest.revision,
        digest: b.digest,
        payload: b.manifest.payload.length,
        signatures: b.signatures.map((s) => s.keyid),
        verifiedSigners: b.signers,
        checked: keys ? 'structure, payload hashes and signatures' : 'structure and payload hashes only (pass --key to check signatures)',
      };
      if (f.json) return printJson(out);
      console.log(`${out.id} r${out.revision}: OK — ${out.checked}`);
      console.log(`  digest ${out.digest}`);
      for (const k of out.signatures) console.log(`  signed by ${k}${b.signers.includes(k) ? ' ✓ trusted' : keys ? ' (not a trusted key)' : ''}`);
    });

  withClient(patch.command('publish <bundle>').description("upload a signed bundle and list it in the catalog's custom listing, signed with an author key"))
    .requiredOption('--key <file>', "an author's private key: the listing of custom patches is signed by an author, never by the server")
    .action(async (file: string, f: Flags & { key: string }) => {
      const { readPrivateKey, signTargetsRole } = await import('@patchwarden/server');
      const key = await readPrivateKey(f.key);
      const bytes = readBundleFile(file);
      // checked here first: a bundle that does not verify is never sent
      const local = readBundle(bytes);
      const api = ApiClient.from(f);
      const up = await api.call<{ id: string; revision: number; path: string; sha256: string; length: number }>('POST', '/api/v1/catalog/bundles', bytes);
      if (up.sha256 !== sha256Hex(bytes)) throw new PatchwardenError('E_DIGEST_MISMATCH', 'the server stored other bytes than were sent');
      const cur = await api.call<{ version: number; template: { targets: Record<string, { custom?: { patch?: string } }> } & Record<string, unknown> }>('GET', '/api/v1/catalog/custom-role');
      const targets: Record<string, unknown> = {};
      // the next listing: everything listed now, minus other revisions of this patch, plus this bundle
      for (const [p, t] of Object.entries(cur.template.targets)) if (t.custom?.patch !== local.manifest.id) targets[p] = t;
      targets[up.path] = { length: up.length, hashes: { sha256: up.sha256 }, custom: { patch: local.manifest.id, revision: local.manifest.revision } };
      const signed = JSON.parse(signTargetsRole({ ...cur.template, targets }, [key]).toString('utf8')) as unknown;
      const res = await api.call<{ version: number; listed: number; retracted: string[] }>('PUT', '/api/v1/catalog/custom-role', signed);
      if (f.json) return printJson({ ...up, listing: res });
      console.log(`published ${up.id} r${up.revision} (${up.length} bytes); the custom listing is now version ${res.version} with ${res.listed} patch(es)`);
      if (res.retracted.length) console.log(`  replaced: ${res.retracted.join(', ')}`);
    });

  withClient(patch.command('retract <id>').description('take a custom patch out of the catalog (the listing is signed again with an author key)'))
    .requiredOption('--key <file>', "an author's private key")
    .action(async (id: string, f: Flags & { key: string }) => {
      const { readPrivateKey, signTargetsRole } = await import('@patchwarden/server');
      const key = await readPrivateKey(f.key);
      const api = ApiClient.from(f);
      const cur = await api.call<{ template: { targets: Record<string, { custom?: { patch?: string } }> } & Record<string, unknown> }>('GET', '/api/v1/catalog/custom-role');
      const targets = Object.fromEntries(Object.entries(cur.template.targets).filter(([, t]) => t.custom?.patch !== id));
      if (Object.keys(targets).length === Object.keys(cur.template.targets).length) {
        throw new PatchwardenError('E_NOT_FOUND', `${id} is not in the custom listing`, { hint: 'see `patchwarden patch list --custom`' });
      }
      const signed = JSON.parse(signTargetsRole({ ...cur.template, targets }, [key]).toString('utf8')) as unknown;
      const res = await api.call<{ version: number; retracted: string[] }>('PUT', '/api/v1/catalog/custom-role', signed);
      if (f.json) return printJson(res);
      console.log(`retracted ${res.retracted.join(', ')}; the custom listing is now version ${res.version}`);
    });

  withClient(patch.command('list').description('patches in the catalog (with --custom: the custom bundles and their status)'))
    .option('--custom', 'custom bundles: uploaded, listed, retracted')
    .option('--search <text>', 'only ids containing this')
    .option('--limit <n>', 'at most this many', '100')
    .action(async (f: Flags & { custom?: boolean; search?: string; limit: string }) => {
      const api = ApiClient.from(f);
      if (f.custom) {
        const res = await api.call<{ items: { id: string; revision: number; status: string; length: number; signers: string[]; publishedAt: string }[] }>('GET', '/api/v1/catalog/bundles');
        if (f.json) return printJson(res.items);
        if (!res.items.length) return console.log('No custom bundle yet: see `patchwarden patch --help`.');
        return console.log(
          table(res.items, [
            { header: 'ID', get: (r) => r.id },
            { header: 'REV', get: (r) => r.revision, align: 'right' },
            { header: 'STATUS', get: (r) => r.status },
            { header: 'BYTES', get: (r) => r.length, align: 'right' },
            { header: 'SIGNERS', get: (r) => r.signers.map((s) => s.slice(0, 12)).join(' ') },
            { header: 'PUBLISHED', get: (r) => r.publishedAt },
          ]),
        );
      }
      const q = new URLSearchParams({ limit: f.limit, ...(f.search ? { search: f.search } : {}) });
      const res = await api.call<{ total: number; items: { id: string; revision: number; title: string; severity: string; source: string }[] }>('GET', `/api/v1/catalog/patches?${q}`);
      if (f.json) return printJson(res.items);
      console.log(
        table(res.items, [
          { header: 'ID', get: (r) => r.id },
          { header: 'REV', get: (r) => r.revision, align: 'right' },
          { header: 'SEVERITY', get: (r) => r.severity },
          { header: 'SOURCE', get: (r) => r.source },
          { header: 'TITLE', get: (r) => r.title.slice(0, 60) },
        ]),
      );
      if (res.total > res.items.length) console.log(`(${res.items.length} of ${res.total}; --limit or --search for more)`);
    });

  withClient(patch.command('show <id>').description('one patch: its manifest and digest')).action(async (id: string, f: Flags) => {
    const res = await ApiClient.from(f).call<{ digest: string; manifest: Record<string, unknown> }>('GET', `/api/v1/catalog/patch?${new URLSearchParams({ id })}`);
    if (f.json) return printJson(res);
    const m = res.manifest as { id: string; revision: number; title: string; severity: string; cves?: string[]; requires?: string[]; supersedes?: string[]; install?: unknown[] };
    console.log(`${m.id} r${m.revision} — ${m.title}`);
    console.log(`  severity ${m.severity}; digest ${res.digest}`);
    if (m.cves?.length) console.log(`  CVEs: ${m.cves.join(', ')}`);
    if (m.requires?.length) console.log(`  requires: ${m.requires.join(', ')}`);
    if (m.supersedes?.length) console.log(`  supersedes: ${m.supersedes.length} patch(es)`);
    console.log(`  install actions: ${m.install?.length ?? 0}  (--json for the whole manifest)`);
  });

}

/**
 * `patchwarden keys`: Ed25519 key pairs for the catalog (root and targets, kept offline by an
 * administrator; authors' keys for custom patches), and which author keys the catalog trusts.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { KEY_ROLES, PatchwardenError, type KeyRole } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];
const DAY = 86_400_000;

function readDoc(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new PatchwardenError('E_VALIDATION', `cannot read ${path} as JSON: ${(err as Error).message}`);
  }
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

async function readOnlinePublic(file: string) {
  const { readPublicKey } = await import('@patchwarden/server');
  const k = await readPublicKey(file);
  if (k.role !== 'online') throw new PatchwardenError('E_KEY_INVALID', `${file} is a ${k.role} key; the server signs timestamp, snapshot and vendor patches with an online key`, { hint: 'create one with `patchwarden keys create NAME --role online`' });
  return k;
}

export function keysCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('signing keys: create author, root and targets keys; manage the authors the catalog trusts')
    .addHelpText(
      'after',
      `
Examples:
  patchwarden keys create alice --role author          writes alice.key (private, owner-only) and alice.pub
  patchwarden keys trust alice.pub                     let the catalog take custom patches signed by alice
  patchwarden keys authors                             the author keys the catalog trusts
  patchwarden keys show alice.pub                      key id and role of a key file

A catalog whose root stays offline (set "localRoot": false in the server's server.json):
  patchwarden keys create root-1 --role root            (three times, on an offline machine)
  patchwarden keys root-init --key root-1.key --key root-2.key --pub root-3.pub --threshold 2 \
      --online SERVER_DATA/keys/online.pub --out .       → 1.root.json, 1.targets.json
  patchwarden catalog import-metadata 1.root.json 1.targets.json
  patchwarden keys sign-targets --key root-1.key --key root-2.key --add-author alice.pub
  patchwarden keys rotate-root --key root-1.key --key root-2.key --new-key root-4.key --threshold 1

After the server's online key was compromised (docs/key-recovery.md):
  patchwarden keys create online-2 --role online --out /safe/place
  patchwarden keys rotate-root --key root-1.key --key root-2.key --online online-2.pub --out next.root.json
  patchwarden keys sign-targets --key root-1.key --key root-2.key --online online-2.pub --out next.targets.json
  (stop the server) patchwarden keys rotate-online --data-dir DIR --new-key online-2.key next.root.json next.targets.json`,
    );

  keys
    .command('create <name>')
    .description('create an Ed25519 key pair: NAME.key (private, mode 0600) and NAME.pub')
    .option('--role <role>', `what the key signs: ${KEY_ROLES.join(', ')}`, 'author')
    .option('--out <dir>', 'where to write the files', '.')
    .option('--json', 'print JSON')
    .action(async (name: string, f: { role: string; out: string; json?: boolean }) => {
      if (!NAME_RE.test(name)) throw new PatchwardenError('E_VALIDATION', `the key name ${JSON.stringify(name)} must be letters, digits, . _ - (up to 64)`);
      if (!(KEY_ROLES as readonly string[]).includes(f.role)) throw new PatchwardenError('E_VALIDATION', `--role must be one of ${KEY_ROLES.join(', ')}`);
      const { generateKey, writeKeyPair } = await import('@patchwarden/server');
      mkdirSync(f.out, { recursive: true });
      const key = generateKey(name, f.role as KeyRole);
      const files = await writeKeyPair(resolve(f.out), key);
      if (f.json) return printJson({ name, role: key.role, keyid: key.keyid, ...files });
      console.log(`created ${f.role} key ${name} (key id ${key.keyid.slice(0, 16)}…)`);
      console.log(`  private: ${files.privatePath}  (keep it secret; back it up offline)`);
      console.log(`  public:  ${files.publicPath}`);
      if (f.role === 'author') console.log(`next: \`patchwarden keys trust ${files.publicPath}\` on the server's administrator machine`);
    });

  keys
    .command('show <file>')
    .description('print the key id, role and name of a key file (public or private)')
    .option('--json', 'print JSON')
    .action(async (file: string, f: { json?: boolean }) => {
      const { readPublicKey } = await import('@patchwarden/server');
      const k = await readPublicKey(file);
      if (f.json) return printJson({ name: k.name, role: k.role, keyid: k.keyid, public: k.public.keyval.public });
      console.log(table([k], [{ header: 'NAME', get: (r) => r.name }, { header: 'ROLE', get: (r) => r.role }, { header: 'KEY ID', get: (r) => r.keyid }]));
    });

  withClient(keys.command('authors').description('the author keys the catalog trusts for custom/* patches')).action(async (f: ClientOptions & { json?: boolean }) => {
    const res = await ApiClient.from(f).call<{ holdsTargetsKeys: boolean; items: { keyid: string }[] }>('GET', '/api/v1/catalog/authors');
    if (f.json) return printJson(res);
    if (!res.items.length) console.log('The catalog trusts no author key yet: `patchwarden keys trust FILE.pub`.');
    else console.log(table(res.items, [{ header: 'KEY ID', get: (r) => r.keyid }]));
  });

  withClient(keys.command('trust <file>').description("trust an author's public key for custom/* patches (re-signs the catalog's targets role)"))
    .option('--remove', 'stop trusting this key instead')
    .action(async (file: string, f: ClientOptions & { json?: boolean; remove?: boolean }) => {
      const { readPublicKey } = await import('@patchwarden/server');
      const key = await readPublicKey(file);
      const res = await ApiClient.from(f).call<{ targetsVersion: number; authors: string[] }>('POST', '/api/v1/catalog/authors', {
        key: { type: 'patchwarden-public-key', name: key.name, role: key.role, keyid: key.keyid, public: key.public },
        remove: !!f.remove,
      });
      if (f.json) return printJson(res);
      console.log(`${f.remove ? 'no longer trusting' : 'trusting'} ${key.name} (${key.keyid.slice(0, 16)}…); targets is now version ${res.targetsVersion}, ${res.authors.length} author key(s)`);
    });

  keys
    .command('root-init')
    .description('make and sign root and top-level targets, version 1, on this (offline) machine')
    .requiredOption('--key <file>', 'a private root key that signs (repeatable; at least --threshold of them)', collect)
    .option('--pub <file>', 'a root public key that is trusted but does not sign now (repeatable)', collect)
    .option('--threshold <n>', 'how many root keys must sign a root', '1')
    .option('--targets-key <file>', 'private targets keys (default: the root keys sign targets too)', collect)
    .requiredOption('--online <file>', "the server's online public key (its data directory's keys/online.pub)")
    .option('--author <file>', 'an author public key for custom/* patches (repeatable)', collect)
    .option('--expires-days <n>', 'how long root and targets last', '365')
    .option('--out <dir>', 'where to write 1.root.json and 1.targets.json', '.')
    .action(async (f: { key: string[]; pub?: string[]; threshold: string; targetsKey?: string[]; online: string; author?: string[]; expiresDays: string; out: string }) => {
      const { readPrivateKey, readPublicKey, rootSigned, topTargetsSigned, signRoot, signTargets } = await import('@patchwarden/server');
      const signers = await Promise.all(f.key.map((k) => readPrivateKey(k)));
      const pubs = [...signers.map((k) => ({ type: 'patchwarden-public-key' as const, name: k.name, role: k.role, keyid: k.keyid, public: k.public })), ...(await Promise.all((f.pub ?? []).map((k) => readPublicKey(k))))];
      const targetsSigners = f.targetsKey ? await Promise.all(f.targetsKey.map((k) => readPrivateKey(k))) : signers;
      const online = await readPublicKey(f.online);
      const authors = await Promise.all((f.author ?? []).map((k) => readPublicKey(k)));
      const expiresAt = Date.now() + Number(f.expiresDays) * DAY;
      const threshold = Number(f.threshold);
      if (signers.length < threshold) throw new PatchwardenError('E_VALIDATION', `--threshold ${threshold} needs at least ${threshold} --key files to sign`);
      const root = signRoot(rootSigned({ version: 1, expiresAt, rootKeys: pubs, rootThreshold: threshold, targetsKeys: targetsSigners, targetsThreshold: Math.min(threshold, targetsSigners.length), online }), signers);
      const targets = signTargets(topTargetsSigned({ version: 1, expiresAt, online, authors }), targetsSigners);
      mkdirSync(f.out, { recursive: true });
      writeFileSync(`${f.out}/1.root.json`, root);
      writeFileSync(`${f.out}/1.targets.json`, targets);
      const { createHash } = await import('node:crypto');
      console.log(`wrote ${f.out}/1.root.json (${pubs.length} root key(s), threshold ${threshold}) and ${f.out}/1.targets.json (${authors.length} author key(s))`);
      console.log(`root sha256 ${createHash('sha256').update(root).digest('hex')}  (agents and local servers pin this)`);
      console.log('next: `patchwarden catalog import-metadata 1.root.json 1.targets.json` against the server');
    });

  withClient(keys.command('sign-targets').description("sign the next top-level targets (e.g. to trust or drop an author) with the offline targets keys"))
    .requiredOption('--key <file>', 'a private targets key (repeatable)', collect)
    .option('--add-author <file>', 'trust this author public key (repeatable)', collect)
    .option('--remove-author <keyid>', 'stop trusting this author key id (repeatable)', collect)
    .option('--online <file>', "delegate vendor patches to this online public key instead (replacing a compromised online key; see docs/key-recovery.md)")
    .option('--expires-days <n>', 'how long it lasts', '365')
    .option('--out <file>', 'write the signed document here instead of sending it to the server')
    .action(async (f: ClientOptions & { json?: boolean; key: string[]; addAuthor?: string[]; removeAuthor?: string[]; online?: string; expiresDays: string; out?: string }) => {
      const { readPrivateKey, readPublicKey, signTargets, topTargetsSigned } = await import('@patchwarden/server');
      const api = ApiClient.from(f);
      const cur = (await api.call<{ signed: { version: number; delegations: { keys: Record<string, { keytype: 'ed25519'; scheme: 'ed25519'; keyval: { public: string } }>; roles: { name: string; keyids: string[] }[] } } }>('GET', '/api/v1/catalog/metadata/targets')).signed;
      const vendors = cur.delegations.roles.find((r) => r.name === 'vendors')!;
      const onlineId = vendors.keyids[0]!;
      const online = f.online ? await readOnlinePublic(f.online) : { type: 'patchwarden-public-key' as const, name: 'online', role: 'online' as const, keyid: onlineId, public: cur.delegations.keys[onlineId]! };
      const drop = new Set(f.removeAuthor ?? []);
      const custom = cur.delegations.roles.find((r) => r.name === 'custom');
      const authors = (custom?.keyids ?? []).filter((id) => !drop.has(id)).map((id) => ({ keyid: id, public: cur.delegations.keys[id]! }));
      for (const a of f.addAuthor ?? []) {
        const k = await readPublicKey(a);
        if (k.role !== 'author') throw new PatchwardenError('E_KEY_INVALID', `${a} is a ${k.role} key; custom patches are signed by author keys`);
        if (!authors.some((x) => x.keyid === k.keyid)) authors.push({ keyid: k.keyid, public: k.public });
      }
      const signers = await Promise.all(f.key.map((k) => readPrivateKey(k)));
      const doc = signTargets(topTargetsSigned({ version: cur.version + 1, expiresAt: Date.now() + Number(f.expiresDays) * DAY, online, authors }), signers);
      if (f.out) {
        writeFileSync(f.out, doc);
        return console.log(`wrote ${f.out}: targets version ${cur.version + 1}, ${authors.length} author key(s)${f.online ? `, vendor patches on online key ${online.keyid.slice(0, 16)}…` : ''}`);
      }
      const res = await api.call<{ targets?: number }>('POST', '/api/v1/catalog/metadata', { targets: JSON.parse(doc.toString('utf8')) as unknown });
      if (f.json) return printJson(res);
      console.log(`targets is now version ${res.targets}, ${authors.length} author key(s)`);
    });

  withClient(keys.command('rotate-root').description('sign the next root with the current root keys and the new ones (new keys, a new threshold, or a new online key)'))
    .requiredOption('--key <file>', 'a current private root key (repeatable; a threshold of them)', collect)
    .option('--new-key <file>', 'a private key of the new root (repeatable; signs too)', collect)
    .option('--new-pub <file>', 'a public key of the new root that does not sign now (repeatable)', collect)
    .option('--threshold <n>', 'the new root threshold (default: unchanged)')
    .option('--online <file>', "the server's online public key (default: unchanged; a new one replaces a compromised key, see docs/key-recovery.md)")
    .option('--expires-days <n>', 'how long it lasts', '365')
    .option('--out <file>', 'write the signed root here instead of sending it to the server')
    .action(async (f: ClientOptions & { json?: boolean; key: string[]; newKey?: string[]; newPub?: string[]; threshold?: string; online?: string; expiresDays: string; out?: string }) => {
      const { readPrivateKey, readPublicKey, rootSigned, signRoot } = await import('@patchwarden/server');
      const api = ApiClient.from(f);
      type KeyJson = { keytype: 'ed25519'; scheme: 'ed25519'; keyval: { public: string } };
      const cur = (await api.call<{ signed: { version: number; keys: Record<string, KeyJson>; roles: Record<string, { keyids: string[]; threshold: number }> } }>('GET', '/api/v1/catalog/metadata/root')).signed;
      const pubOf = (id: string, role: 'root' | 'targets' | 'online') => ({ type: 'patchwarden-public-key' as const, name: id.slice(0, 12), role, keyid: id, public: cur.keys[id]! });
      const old = await Promise.all(f.key.map((k) => readPrivateKey(k)));
      const fresh = await Promise.all((f.newKey ?? []).map((k) => readPrivateKey(k)));
      const freshPubs = await Promise.all((f.newPub ?? []).map((k) => readPublicKey(k)));
      const rootKeys = fresh.length || freshPubs.length ? [...fresh, ...freshPubs] : cur.roles.root!.keyids.map((id) => pubOf(id, 'root'));
      const online = f.online ? await readOnlinePublic(f.online) : pubOf(cur.roles.timestamp!.keyids[0]!, 'online');
      const signed = rootSigned({
        version: cur.version + 1,
        expiresAt: Date.now() + Number(f.expiresDays) * DAY,
        rootKeys,
        // a lower threshold is a decision, never a default
        rootThreshold: f.threshold === undefined ? cur.roles.root!.threshold : Number(f.threshold),
        targetsKeys: cur.roles.targets!.keyids.map((id) => pubOf(id, 'targets')),
        targetsThreshold: cur.roles.targets!.threshold,
        online,
      });
      const doc = signRoot(signed, [...new Map([...old, ...fresh].map((k) => [k.keyid, k])).values()]);
      if (f.out) {
        writeFileSync(f.out, doc);
        return console.log(`wrote ${f.out}: root version ${cur.version + 1}${f.online ? `, timestamp and snapshot on online key ${online.keyid.slice(0, 16)}…` : ''}`);
      }
      const res = await api.call<{ root?: number }>('POST', '/api/v1/catalog/metadata', { root: JSON.parse(doc.toString('utf8')) as unknown });
      if (f.json) return printJson(res);
      console.log(`root is now version ${res.root}; agents and local servers walk to it from the root they pinned`);
    });

  keys
    .command('rotate-online [files...]')
    .description("replace the server's online key (after it was compromised): run on the server's machine while the server is stopped")
    .requiredOption('--new-key <file>', 'the new online private key (`patchwarden keys create NAME --role online`)')
    .option('--data-dir <dir>', "the server's data directory")
    .option('--database <url>', "the server's database (default: the data directory's SQLite file)")
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
FILES are the next root and top-level targets, signed offline and naming the new key
(\`keys rotate-root --online NEW.pub --out\`, \`keys sign-targets --online NEW.pub --out\`). A server
that holds its root key (local mode) signs them itself: give no files. Every online role is
re-signed with the new key in the same transaction, and keys/online.key is replaced.
The whole procedure: docs/key-recovery.md.`,
    )
    .action(async (files: string[], f: { newKey: string; dataDir?: string; database?: string; json?: boolean }) => {
      const { loadServerConfig, databaseUrl, openDatabase, loadOrCreateRepoKeys, readPrivateKey, TufRepository, rotateOnlineKey } = await import('@patchwarden/server');
      const { existsSync, renameSync } = await import('node:fs');
      const { join } = await import('node:path');
      const config = loadServerConfig({ flags: { dataDir: f.dataDir, database: f.database } });
      const keyDir = join(config.dataDir, 'keys');
      if (!existsSync(join(keyDir, 'online.key'))) throw new PatchwardenError('E_CONFIG_INVALID', `${config.dataDir} holds no online key (keys/online.key)`, { hint: "pass the server's --data-dir" });
      const newKey = await readPrivateKey(f.newKey);
      if (newKey.role !== 'online') throw new PatchwardenError('E_KEY_INVALID', `${f.newKey} is a ${newKey.role} key, not an online key`, { hint: 'create one with `patchwarden keys create NAME --role online`' });
      const keys = await loadOrCreateRepoKeys(config.dataDir, { allowLocalRoot: false });
      const oldId = keys.online.keyid;
      const database = await openDatabase({ url: databaseUrl(config) });
      let out: { root: number; targets?: number; resigned?: string[] };
      try {
        const repo = new TufRepository(database.db, keys, Date.now);
        if (!(await repo.initialized())) throw new PatchwardenError('E_CONFLICT', 'the catalog has no root yet: there is no online key to replace');
        if (files.length) {
          const input: { root?: unknown; targets?: unknown } = {};
          for (const file of files) {
            const doc = readDoc(file);
            const type = (doc.signed as { _type?: string } | undefined)?._type;
            if (type !== 'root' && type !== 'targets') throw new PatchwardenError('E_VALIDATION', `${file} is neither root nor targets metadata`);
            input[type] = doc;
          }
          out = await rotateOnlineKey(repo, Date.now(), newKey, { root: input.root, targets: input.targets });
        } else {
          if (!keys.root?.length) {
            throw new PatchwardenError('E_VALIDATION', "this server's root stays offline: give the next root and top-level targets, signed offline and naming the new key", {
              hint: 'see docs/key-recovery.md: `keys rotate-root --online NEW.pub --out` and `keys sign-targets --online NEW.pub --out`',
            });
          }
          const threshold = ((await repo.role('root')).json.signed as { roles: { root: { threshold: number } } }).roles.root.threshold;
          out = { root: await repo.rotateRoot({ root: keys.root, threshold, online: newKey }) };
        }
      } finally {
        await database.close();
      }
      // the catalog now names the new key alone: the server must start with it
      const { publicFileOf } = await import('@patchwarden/core');
      writeFileSync(join(keyDir, 'online.key.next'), JSON.stringify({ ...newKey, name: 'online' }, null, 2) + '\n', { mode: 0o600 });
      writeFileSync(join(keyDir, 'online.pub.next'), JSON.stringify(publicFileOf({ ...newKey, name: 'online' }), null, 2) + '\n', { mode: 0o644 });
      renameSync(join(keyDir, 'online.key.next'), join(keyDir, 'online.key'));
      renameSync(join(keyDir, 'online.pub.next'), join(keyDir, 'online.pub'));
      const res = { oldKeyId: oldId, newKeyId: newKey.keyid, ...out };
      if (f.json) return printJson(res);
      console.log(`the catalog's online key is now ${newKey.keyid.slice(0, 16)}… (was ${oldId.slice(0, 16)}…): root version ${out.root}${out.targets ? `, targets version ${out.targets}` : ''}, online roles re-signed`);
      console.log(`next: start the server; agents and local servers walk to root version ${out.root} by themselves and refuse what the old key signs`);
    });

  const catalog = program.commands.find((c) => c.name() === 'catalog') ?? program.command('catalog');
  withClient(catalog.command('import-metadata <files...>').description('import root and/or top-level targets signed offline (from `patchwarden keys root-init` or `--out`)')).action(
    async (files: string[], f: ClientOptions & { json?: boolean }) => {
      const body: { root?: unknown; targets?: unknown } = {};
      for (const file of files) {
        const doc = readDoc(file);
        const type = (doc.signed as { _type?: string } | undefined)?._type;
        if (type !== 'root' && type !== 'targets') throw new PatchwardenError('E_VALIDATION', `${file} is neither root nor targets metadata`);
        body[type] = doc;
      }
      const res = await ApiClient.from(f).call<{ root?: number; targets?: number }>('POST', '/api/v1/catalog/metadata', body);
      if (f.json) return printJson(res);
      console.log(`imported${res.root ? ` root version ${res.root}` : ''}${res.targets ? ` targets version ${res.targets}` : ''}`);
    },
  );
}

/**
 * `patchwarden keys`: Ed25519 key pairs for the catalog (root and targets, kept offline by an
 * administrator; authors' keys for custom patches), and which author keys the catalog trusts.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { KEY_ROLES, PatchwardenError, type KeyRole } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

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
  patchwarden keys show alice.pub                      key id and role of a key file`,
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
}

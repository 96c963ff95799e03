/**
 * One way into the catalog for vendor patches (feeds, the JSON upload route, `npm start`'s
 * local import): store the patches, list the changed ones in the signed repository, and move
 * compliance — store and signed catalog in one transaction, so neither is ever ahead.
 */
import { actionsNeedAuthor, canonicalJson, PatchwardenError, type PatchManifest, type Platform } from '@patchwarden/core';
import type { AppContext } from '../http/context.js';
import { upsertPatchesIn, type CatalogSource, type UpsertResult } from './store.js';
import { targetPathOf } from './tuf/repo.js';

export interface PublishResult extends UpsertResult {
  contextsEvaluated: number;
  signed: { bins: number; targets: number };
}

export async function publishVendorPatches(
  ctx: Pick<AppContext, 'db' | 'tuf' | 'compliance' | 'now'>,
  patches: PatchManifest[],
  coverage: Platform[],
  source: CatalogSource,
): Promise<PublishResult> {
  for (const p of patches) {
    if (p.id.startsWith('custom/')) {
      throw new PatchwardenError('E_FORBIDDEN', `${p.id}: custom patches are published as bundles signed by their authors`, {
        hint: 'build and sign it: `patchwarden patch build DIR`, `patchwarden patch sign BUNDLE --key author.key`, then `patchwarden patch publish BUNDLE --key author.key`',
      });
    }
    // what the online key signs may only ask a device's own package manager for packages from
    // repositories it already trusts; scripts, file operations and bundled packages need an author
    if (actionsNeedAuthor(p)) {
      throw new PatchwardenError('E_FORBIDDEN', `${p.id}: scripts, file operations and bundled packages need an author's signature; the server's online key never signs them`, {
        hint: 'publish it as a custom patch bundle signed by an author key',
      });
    }
  }
  if (!(await ctx.tuf.initialized())) {
    throw new PatchwardenError('E_CONFLICT', 'the catalog has no root yet, so nothing can be signed into it', {
      hint: 'make root and targets offline with `patchwarden keys root-init`, then `patchwarden catalog import-metadata 1.root.json 1.targets.json`',
    });
  }
  let result!: UpsertResult;
  let signed = { bins: 0, targets: 0 };
  await ctx.db.transaction().execute(async (tx) => {
    result = await upsertPatchesIn(tx, patches, coverage, source, ctx.now());
    if (!result.changed.length) return;
    const inputs = [];
    for (let i = 0; i < result.changed.length; i += 500) {
      const rows = await tx.selectFrom('patches').select(['id', 'revision', 'manifest_json']).where('id', 'in', result.changed.slice(i, i + 500)).execute();
      for (const r of rows) {
        inputs.push({ path: targetPathOf(r.id, 'json'), bytes: canonicalJson(JSON.parse(r.manifest_json)), patchId: r.id, revision: r.revision });
      }
    }
    signed = await ctx.tuf.publishVendorTargets(inputs, tx);
  });
  const evaluated = await ctx.compliance.catalogChanged(result.changed);
  return { ...result, contextsEvaluated: evaluated.contexts, signed };
}

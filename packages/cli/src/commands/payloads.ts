/**
 * `patchwarden catalog cache-payloads`: the server fetches the package files that patches
 * install from their vendors' repositories into its content store (checked against the signed
 * hashes), so undo and air-gapped sites still work after a mirror drops those versions.
 */
import type { Command } from 'commander';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

interface CacheResult {
  referenced: number;
  fetched: number;
  bytes: number;
  cached: number;
  failed: { url: string; reason: string }[];
}

const BATCH = 50;

export function payloadCommands(program: Command): void {
  const catalog = program.commands.find((c) => c.name() === 'catalog') ?? program.command('catalog');
  withClient(
    catalog
      .command('cache-payloads')
      .description("fetch the package files of patches into the server's content store (default: every patch some device needs)"),
  )
    .option('--patch <id...>', 'only these patches')
    .action(async (f: ClientOptions & { json?: boolean; patch?: string[] }) => {
      const api = ApiClient.from(f);
      let ids = f.patch;
      if (!ids) {
        const needed = await api.call<{ items: { patch?: { id: string } }[] }>('GET', '/api/v1/reports/needed?by=patch');
        ids = needed.items.map((i) => i.patch!.id);
      }
      const total: CacheResult = { referenced: 0, fetched: 0, bytes: 0, cached: 0, failed: [] };
      const { SingleBar, Presets } = await import('cli-progress');
      const bar = !f.json && process.stderr.isTTY ? new SingleBar({ format: 'caching {bar} {value}/{total} patches', stream: process.stderr }, Presets.shades_classic) : null;
      bar?.start(ids.length, 0);
      // in batches, so a long fetch shows progress and one request never runs for hours
      for (let i = 0; i < ids.length; i += BATCH) {
        const r = await api.call<CacheResult>('POST', '/api/v1/catalog/payloads/cache', { patches: ids.slice(i, i + BATCH) });
        total.referenced += r.referenced;
        total.fetched += r.fetched;
        total.bytes += r.bytes;
        total.cached += r.cached;
        total.failed.push(...r.failed);
        bar?.update(Math.min(ids.length, i + BATCH));
      }
      bar?.stop();
      if (f.json) return printJson({ patches: ids.length, ...total });
      console.log(
        table(
          [{ patches: ids.length, files: total.referenced, fetched: total.fetched, mb: (total.bytes / 1048576).toFixed(1), cached: total.cached, failed: total.failed.length }],
          [
            { header: 'PATCHES', get: (r) => r.patches, align: 'right' },
            { header: 'FILES', get: (r) => r.files, align: 'right' },
            { header: 'FETCHED', get: (r) => r.fetched, align: 'right' },
            { header: 'MB', get: (r) => r.mb, align: 'right' },
            { header: 'ALREADY CACHED', get: (r) => r.cached, align: 'right' },
            { header: 'FAILED', get: (r) => r.failed, align: 'right' },
          ],
        ),
      );
      for (const x of total.failed.slice(0, 20)) console.log(`  failed: ${x.url}: ${x.reason}`);
      if (total.failed.length) {
        console.log(total.failed.length > 20 ? `  … and ${total.failed.length - 20} more (--json lists all)` : '');
        process.exitCode = 1;
      }
    });
}

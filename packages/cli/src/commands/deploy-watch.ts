/**
 * `deploy status ID --watch`: follows a deployment until it ends. On a terminal, one bar per ring
 * (finished ÷ devices, with succeeded and failed counts and the ring's status), redrawn in
 * place; anywhere else (a pipe, a CI log) one line per ring whose numbers changed, so the log
 * reads as a history. The exit code tells how it ended.
 */
import { PatchwardenError } from '@patchwarden/core';
import type { DeploymentStatus } from './deploy.js';

/** Exit codes of `--watch`: documented in the command's help. */
export const WATCH_EXIT = { complete: 0, halted: 11, undone: 12 } as const;
const ENDED = new Set(Object.keys(WATCH_EXIT));

export interface WatchOptions {
  intervalMs: number;
  /** redraw bars (a terminal) or print lines */
  tty: boolean;
  /** print each changed status as one JSON line instead (implies lines) */
  json?: boolean;
  out?: NodeJS.WritableStream;
  /** where notes go (a poll that could not reach the server): never into the JSON lines */
  err?: NodeJS.WritableStream;
  sleep?: (ms: number) => Promise<void>;
  /** polls in a row that may fail to reach the server before giving up */
  unreachableTries?: number;
}

/** `--interval` in seconds → milliseconds. */
export function intervalMs(seconds: string): number {
  const s = Number(seconds);
  if (!(s >= 0.1 && s <= 3600)) throw new PatchwardenError('E_VALIDATION', `--interval is a number of seconds from 0.1 to 3600, not '${seconds}'`);
  return s * 1000;
}

type Ring = DeploymentStatus['rings'][number];
const finished = (r: Ring) => r.counts.total - r.counts.unfinished;
export const ringLine = (r: Ring) => `${r.name}: ${finished(r)}/${r.counts.total} finished (${r.counts.succeeded} succeeded, ${r.counts.failed} failed), ${r.status}${r.reason ? ` — ${r.reason}` : ''}`;
const headline = (d: DeploymentStatus) => `deployment ${d.id}: ${d.status}${d.reason ? ` — ${d.reason}` : ''}`;

export async function watchDeployment(fetchStatus: () => Promise<DeploymentStatus>, opts: WatchOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const tries = opts.unreachableTries ?? 5;
  const print = (s: string) => void out.write(`${s}\n`);
  const poll = async (): Promise<DeploymentStatus> => {
    for (let failed = 0; ; failed++) {
      try {
        return await fetchStatus();
      } catch (err) {
        if ((err as { code?: string }).code !== 'E_SERVER_UNREACHABLE' || failed + 1 >= tries) throw err;
        if (!opts.tty || opts.json) (opts.err ?? process.stderr).write(`(server unreachable, trying again: ${failed + 1} of ${tries - 1})\n`);
        await sleep(opts.intervalMs);
      }
    }
  };

  let d = await poll();
  const { MultiBar, Presets } = await import('cli-progress');
  const bars = opts.tty && !opts.json ? new MultiBar({ stream: out, format: ' {ring} {bar} {finished}/{devices} finished  {succeeded} ok  {failed} failed  {status}', barsize: 30, hideCursor: false, autopadding: true, clearOnComplete: false, stopOnComplete: false }, Presets.shades_classic) : null;
  const ringBars: ReturnType<NonNullable<typeof bars>['create']>[] = [];
  const last = new Map<string, string>();
  let lastHead = '';
  let lastJson = '';
  if (bars) print(`deployment ${d.id} (${d.patches.join(', ')}): refreshed every ${opts.intervalMs / 1000} s, Ctrl-C stops watching (not the deployment)`);
  const nameWidth = Math.max(...d.rings.map((r) => r.name.length));
  try {
    for (;;) {
      if (opts.json) {
        const j = JSON.stringify({ status: d.status, reason: d.reason, currentRing: d.currentRing, rings: d.rings });
        if (j !== lastJson) print(JSON.stringify(d));
        lastJson = j;
      } else if (bars) {
        d.rings.forEach((r, i) => {
          const payload = { ring: r.name.padEnd(nameWidth), finished: finished(r), devices: r.counts.total, succeeded: r.counts.succeeded, failed: r.counts.failed, status: r.status };
          // an empty ring is done: a full bar, not 0/0
          const total = Math.max(1, r.counts.total);
          const value = r.counts.total === 0 ? 1 : finished(r);
          if (!ringBars[i]) ringBars[i] = bars.create(total, value, payload);
          else {
            ringBars[i]!.setTotal(total);
            ringBars[i]!.update(value, payload);
          }
        });
      } else {
        const head = headline(d);
        if (head !== lastHead) print(head);
        lastHead = head;
        for (const r of d.rings) {
          const line = ringLine(r);
          if (last.get(r.name) !== line) print(`  ${line}`);
          last.set(r.name, line);
        }
      }
      if (ENDED.has(d.status)) break;
      await sleep(opts.intervalMs);
      d = await poll();
    }
  } finally {
    bars?.stop();
  }
  if (bars) print(headline(d));
  return WATCH_EXIT[d.status as keyof typeof WATCH_EXIT];
}

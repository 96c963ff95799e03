/** Compliance from the command line: what is needed where, and why. */
import type { Command } from 'commander';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };
type Trace = { rule: string; result: 'true' | 'false' | 'unknown'; detail?: string; children?: Trace[] };


const MARK = { true: '✓', false: '✗', unknown: '?' } as const;

export function printTrace(t: Trace, indent = '  '): void {
  console.log(`${indent}${MARK[t.result]} ${t.rule}${t.detail ? ` — ${t.detail}` : ''}`);
  for (const c of t.children ?? []) printTrace(c, `${indent}  `);
}

export function complianceCommands(program: Command): void {
  const report = program.command('report').description('compliance reports');
  withClient(report.command('needed').description('needed patches per device (or, with --by patch, devices per patch)'))
    .option('--by <what>', 'device or patch', 'device')
    .option('--severity <severity>', 'only this severity')
    .action(async (f: Flags & { by: string; severity?: string }) => {
      const q = new URLSearchParams({ by: f.by, ...(f.severity ? { severity: f.severity } : {}) });
      const res = await ApiClient.from(f).call<{
        by: string;
        items: { device?: { hostname: string }; needed?: { patch: string; severity: string }[]; patch?: { id: string; severity: string; title: string }; devices?: { hostname: string }[] }[];
        notAssessed: { hostname: string }[];
      }>('GET', `/api/v1/reports/needed?${q}`);
      if (f.json) return printJson(res);
      if (res.items.length === 0) console.log('No device needs a patch.');
      else if (res.by === 'device') {
        console.log(table(res.items, [
          { header: 'device', get: (i) => i.device!.hostname },
          { header: 'needed', get: (i) => i.needed!.length, align: 'right' },
          { header: 'critical', get: (i) => i.needed!.filter((n) => n.severity === 'critical').length, align: 'right' },
          { header: 'high', get: (i) => i.needed!.filter((n) => n.severity === 'high').length, align: 'right' },
          { header: 'first patches', get: (i) => i.needed!.slice(0, 3).map((n) => n.patch).join(', ') },
        ]));
      } else {
        console.log(table(res.items, [
          { header: 'patch', get: (i) => i.patch!.id },
          { header: 'severity', get: (i) => i.patch!.severity },
          { header: 'devices', get: (i) => i.devices!.length, align: 'right' },
          { header: 'title', get: (i) => i.patch!.title },
        ]));
      }
      if (res.notAssessed.length) {
        console.log(`\nNot assessed (no feed covers their OS release; not counted as patched): ${res.notAssessed.map((d) => d.hostname).join(', ')}`);
      }
    });

  withClient(
    program
      .command('explain')
      .description('why a patch is in its state on a device: each rule, and the facts that decided it')
      .argument('<device>', 'device id or hostname')
      .argument('<patch>', 'patch id'),
  ).action(async (device: string, patch: string, f: Flags) => {
    const r = await ApiClient.from(f).call<{
      device: { hostname: string };
      patch: { id: string; title: string };
      state: string;
      missing?: string[];
      by?: string;
      reason?: string;
      applicability: Trace;
      installed: Trace;
    }>('GET', `/api/v1/devices/${encodeURIComponent(device)}/explain?patch=${encodeURIComponent(patch)}`);
    if (f.json) return printJson(r);
    console.log(`${r.patch.id} on ${r.device.hostname}: ${r.state}${r.by ? ` (by ${r.by})` : ''}${r.reason ? ` — ${r.reason}` : ''}`);
    if (r.missing?.length) console.log(`  facts not reported yet: ${r.missing.join(', ')}`);
    console.log('applicability:');
    printTrace(r.applicability);
    console.log('installed:');
    printTrace(r.installed);
  });

  const compliance = program.command('compliance').description('the compliance state table');
  withClient(compliance.command('recompute').description('re-evaluate every device from scratch (repair)')).action(async (f: Flags) => {
    const r = await ApiClient.from(f).call<{ contexts: number; ms: number }>('POST', '/api/v1/compliance/recompute');
    if (f.json) printJson(r);
    else console.log(`re-evaluated ${r.contexts} distinct device states in ${r.ms} ms`);
  });
}

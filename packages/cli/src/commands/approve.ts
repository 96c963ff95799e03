/**
 * `approve rules …`: approval rules per group, under the `approve` command. `approve` takes its
 * own options only before `rules`, so `approve rules add --group G` gives --group to the rule.
 */
import type { Command } from 'commander';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

interface RuleView {
  id: string;
  group: string;
  minSeverity: string | null;
  vendors: string[] | null;
  minAgeDays: number | null;
  exploitedOnly: boolean;
  requireTestPass: boolean;
  createdAt: string;
}

const list = (xs: string | undefined) => (xs ? xs.split(',').map((s) => s.trim()).filter(Boolean) : undefined);

export function conditions(r: RuleView): string {
  const c = [
    r.minSeverity && `severity ≥ ${r.minSeverity}`,
    r.vendors && `vendor ${r.vendors.join('|')}`,
    r.minAgeDays !== null && `released ≥ ${r.minAgeDays} days ago`,
    r.exploitedOnly && 'fixes an exploited CVE',
    r.requireTestPass && 'passed the test ring',
  ].filter(Boolean);
  return c.length ? c.join(', ') : 'every needed patch';
}

export function approveRuleCommands(program: Command): void {
  const approve = program.commands.find((c) => c.name() === 'approve') ?? program.command('approve');
  // positional options on the way down (program → approve → rules): each command parses only
  // the options before its subcommand, so `approve rules add --group G --json` reaches `add`
  program.enablePositionalOptions();
  approve.enablePositionalOptions();
  const rules = approve
    .command('rules')
    .description('approval rules: approve patches for a group automatically when conditions hold')
    .addHelpText(
      'after',
      `
A rule approves, for its group, every patch that at least one device needs and that meets all of
its conditions. It never replaces an administrator's decision (approve or decline) and never
declines. Rules run when the server's schedule applies them, or now with \`approve rules apply\`.

Examples:
  patchwarden approve rules add --group workstations --min-severity high --min-age-days 7
  patchwarden approve rules add --group servers --exploited-only --require-test-pass
  patchwarden approve rules add --group browsers --vendor mozilla,google
  patchwarden approve rules list
  patchwarden approve rules apply`,
    );

  withClient(
    rules
      .command('add')
      .description('add a rule for a group (all its conditions must hold)')
      .requiredOption('--group <name>', 'the group the rule approves for')
      .option('--min-severity <level>', 'severity at least: critical, high, medium or low')
      .option('--vendor <names>', "the patch's vendor is one of these, comma-separated (default vendor: the id's namespace, debian/…)")
      .option('--min-age-days <n>', 'cool-down: days since the release date (or the import, without one)')
      .option('--exploited-only', 'only patches that fix a CVE flagged as exploited (`patchwarden cves exploited CVE`)')
      .option('--require-test-pass', 'only patches that passed the test ring'),
  ).action(async (f: Flags & { group: string; minSeverity?: string; vendor?: string; minAgeDays?: string; exploitedOnly?: boolean; requireTestPass?: boolean }) => {
    const body = {
      group: f.group,
      ...(f.minSeverity ? { minSeverity: f.minSeverity } : {}),
      ...(f.vendor ? { vendors: list(f.vendor) } : {}),
      ...(f.minAgeDays !== undefined ? { minAgeDays: Number(f.minAgeDays) } : {}),
      exploitedOnly: !!f.exploitedOnly,
      requireTestPass: !!f.requireTestPass,
    };
    const r = await ApiClient.from(f).call<RuleView>('POST', '/api/v1/approval-rules', body);
    if (f.json) return printJson(r);
    console.log(`added rule ${r.id} for group ${r.group}: ${conditions(r)}`);
  });

  withClient(rules.command('list').description('list approval rules')).action(async (f: Flags) => {
    const r = await ApiClient.from(f).call<{ items: RuleView[]; total: number }>('GET', '/api/v1/approval-rules');
    if (f.json) return printJson(r);
    if (!r.items.length) return console.log('No approval rules. Add one: patchwarden approve rules add --group NAME --min-severity high');
    console.log(
      table(r.items, [
        { header: 'id', get: (x) => x.id },
        { header: 'group', get: (x) => x.group },
        { header: 'approves when', get: conditions },
        { header: 'created', get: (x) => x.createdAt },
      ]),
    );
  });

  withClient(rules.command('remove').description('remove a rule (the approvals it made stay)').argument('<id>', 'rule id')).action(async (id: string, f: Flags) => {
    await ApiClient.from(f).call('DELETE', `/api/v1/approval-rules/${encodeURIComponent(id)}`);
    if (f.json) return printJson({ removed: id });
    console.log(`removed rule ${id}`);
  });

  withClient(rules.command('apply').description('apply every rule now and list what it approved')).action(async (f: Flags) => {
    const r = await ApiClient.from(f).call<{ approved: { patch: string; group: string; ruleId: string }[]; total: number }>('POST', '/api/v1/approval-rules/apply');
    if (f.json) return printJson(r);
    if (!r.approved.length) return console.log('Nothing new to approve.');
    console.log(
      table(r.approved, [
        { header: 'patch', get: (x) => x.patch },
        { header: 'group', get: (x) => x.group },
        { header: 'rule', get: (x) => x.ruleId },
      ]),
    );
    console.log(`approved ${r.total}`);
  });
}

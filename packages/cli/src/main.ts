/** The one `patchwarden` command. */
import { Command, CommanderError } from 'commander';
import { reportError } from './errors.js';
import { adminCommands } from './commands/admin.js';
import { agentCommands } from './commands/agent.js';
import { serverCommands } from './commands/server.js';
import { tokenCommands } from './commands/token.js';
import { vercmpCommand } from './commands/vercmp.js';
import { complianceCommands } from './commands/compliance.js';
import { deployCommands } from './commands/deploy.js';
import { approveRuleCommands } from './commands/approve.js';
import { groupTargetingCommands } from './commands/groups.js';
import { cveCommands } from './commands/cves.js';
import { catalogCommand } from './commands/catalog.js';
import { scanCommand } from './commands/scan.js';
import { keysCommands } from './commands/keys.js';
import { patchCommands } from './commands/patch.js';
import { payloadCommands } from './commands/payloads.js';
import { siteCommands } from './commands/sites.js';
import { webhookCommands } from './commands/webhooks.js';
import { backupCommands } from './commands/backup.js';
import { userCommands } from './commands/users.js';
import { auditCommands } from './commands/audit.js';

export const CLI_VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('patchwarden')
    .version(CLI_VERSION)
    .description('Patchwarden: know what every device needs, and patch it.')
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  program.addHelpText(
    'after',
    `
Getting started:
  patchwarden start                          server + console + a report-only agent for this machine
  patchwarden secrets create laptops         make an enrollment secret
  patchwarden agent enroll --server http://HOST:8060 --secret pwe_…   (on a device)
  patchwarden agent run                      report facts on an interval
  patchwarden devices list                   what is enrolled, and when it last checked in`,
  );
  serverCommands(program);
  agentCommands(program);
  adminCommands(program);
  tokenCommands(program);
  complianceCommands(program);
  deployCommands(program);
  approveRuleCommands(program);
  groupTargetingCommands(program);
  cveCommands(program);
  catalogCommand(program);
  scanCommand(program);
  patchCommands(program);
  payloadCommands(program);
  siteCommands(program);
  webhookCommands(program);
  backupCommands(program);
  userCommands(program);
  auditCommands(program);
  keysCommands(program);
  vercmpCommand(program);
  return program;
}

export async function run(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.exitCode = reportError(err);
  }
}

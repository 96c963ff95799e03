import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { compareChecked, getScheme, PatchwardenError, VERSION_SCHEMES } from '@patchwarden/core';

/** One block per scheme, from the registry, so a new scheme shows up here by itself. */
function schemeHelp(): string {
  const width = Math.max(...Object.keys(VERSION_SCHEMES).map((n) => n.length));
  return Object.values(VERSION_SCHEMES)
    .map((s) => {
      const [a, b, r] = s.example;
      return `  ${s.name.padEnd(width)}  ${s.summary}\n  ${' '.repeat(width)}  patchwarden vercmp --scheme ${s.name} ${a} ${b}   # prints ${r}`;
    })
    .join('\n');
}

export function vercmpCommand(program: Command): void {
  program
    .command('vercmp')
    .description('compare two versions (prints -1, 0 or 1), or compare lines "A B" read from stdin')
    .requiredOption('--scheme <scheme>', `version scheme: ${Object.keys(VERSION_SCHEMES).join(', ')}`)
    .argument('[a]', 'first version')
    .argument('[b]', 'second version')
    .addHelpText('after', () => `
Schemes (each with an example and what it prints):
${schemeHelp()}

Examples:
  patchwarden vercmp --scheme deb 1:2.0-1 2.1-1        # prints 1 (the epoch wins)
  printf '1.0 1.0~rc1\\n2.0 2.0\\n' | patchwarden vercmp --scheme deb   # prints 1, then 0

In batch mode a line that cannot be compared prints "error: …" and the exit status is 1 at the end.`)
    .action(async (a: string | undefined, b: string | undefined, opts: { scheme: string }) => {
      const scheme = getScheme(opts.scheme);
      if (a !== undefined && b === undefined) {
        throw new PatchwardenError('E_VALIDATION', 'give two versions, or none to read pairs from stdin');
      }
      if (a !== undefined && b !== undefined) {
        console.log(compareChecked(scheme, a, b));
        return;
      }
      let failed = 0;
      let out = '';
      const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
      for await (const line of rl) {
        const parts = line.trim().split(/\s+/);
        if (parts.length !== 2 || parts[0] === '') {
          out += `error: expected two versions separated by white space, got ${JSON.stringify(line)}\n`;
          failed++;
        } else {
          try {
            out += `${compareChecked(scheme, parts[0]!, parts[1]!)}\n`;
          } catch (err) {
            out += `error: ${(err as Error).message}\n`;
            failed++;
          }
        }
        if (out.length > 65536) {
          process.stdout.write(out);
          out = '';
        }
      }
      process.stdout.write(out);
      if (failed > 0) process.exitCode = 1;
    });
}

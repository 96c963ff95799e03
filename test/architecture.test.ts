/** Dependencies point one way (DESIGN.md): this test keeps them so. */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/processes.js';

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(p));
    else if (/\.(ts|tsx)$/.test(e.name)) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'([^']+)'|import\('([^']+)'\)/g)].map((m) => m[1] ?? m[2]!);
}

const allowed: Record<string, string[]> = {
  core: [],
  agent: ['core'],
  server: ['core'],
  cli: ['core', 'agent', 'server'],
  console: ['core'],
};

describe('architecture', () => {
  for (const [pkg, may] of Object.entries(allowed)) {
    it(`${pkg} imports only ${may.join(', ') || 'nothing'} of ours`, () => {
      for (const file of sources(join(ROOT, 'packages', pkg, 'src'))) {
        for (const spec of imports(file)) {
          const m = /^@patchwarden\/([a-z]+)/.exec(spec);
          if (m) expect(may, `${file} imports ${spec}`).toContain(m[1]);
        }
      }
    });
  }

  it('core does no I/O', () => {
    const io = /^(node:)?(fs|fs\/promises|net|http|https|child_process|dgram|dns|tls|os|process|worker_threads)$/;
    for (const file of sources(join(ROOT, 'packages/core/src'))) {
      if (file.endsWith('.test.ts')) continue;
      for (const spec of imports(file)) expect(spec, `${file} imports ${spec}`).not.toMatch(io);
      const text = readFileSync(file, 'utf8');
      expect(text, file).not.toMatch(/\bDate\.now\(|new Date\(\)|Math\.random\(|randomBytes\(|process\.env/);
    }
  });

  it('the single-file agent carries none of the server', () => {
    const bundle = join(ROOT, 'packages/agent/dist/patchwarden-agent.mjs');
    expect(existsSync(bundle), 'run npm run build first').toBe(true);
    const text = readFileSync(bundle, 'utf8');
    for (const dep of ['fastify', 'kysely', 'better-sqlite3', 'pg-protocol', '@fastify']) expect(text).not.toContain(`node_modules/${dep}/`);
  });
});

#!/usr/bin/env node
// Builds everything `npm start` and the tests need: TypeScript project references (which also
// type-checks), the console with Vite (skipped when its output is newer than its sources) and
// the single-file agent with esbuild.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const quiet = process.argv.includes('--quiet');
const log = (m) => { if (!quiet) console.log(m); };

function run(cmd, args, cwd = root) {
  const r = spawnSync(cmd, args, { cwd, stdio: quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit' });
  if (r.status !== 0) {
    if (quiet) process.stderr.write(`${r.stdout ?? ''}${r.stderr ?? ''}`);
    console.error(`build failed: ${cmd} ${args.join(' ')} (exit ${r.status})`);
    process.exit(r.status ?? 1);
  }
}

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

log('building TypeScript (tsc -b) …');
run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-b']);

const consoleDir = join(root, 'packages/console');
// the console is not a project reference (Vite builds it); type-check it here
run(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(consoleDir, 'tsconfig.json')]);
const consoleOut = join(consoleDir, 'dist/index.html');
const consoleSrcTime = Math.max(newest(join(consoleDir, 'src')), statSync(join(consoleDir, 'index.html')).mtimeMs,
  statSync(join(consoleDir, 'vite.config.ts')).mtimeMs);
if (!existsSync(consoleOut) || statSync(consoleOut).mtimeMs < consoleSrcTime) {
  log('building the console (vite build) …');
  run(process.execPath, [join(root, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', quiet ? 'error' : 'info'], consoleDir);
}

log('bundling the agent (esbuild) …');
run(process.execPath, [join(root, 'packages/agent/scripts/bundle.mjs')]);
log('build done');

#!/usr/bin/env node
// The `patchwarden` command. The TypeScript build output must exist (npm ci builds it).
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('patchwarden is not built yet: run `npm run build` in the checkout, then try again.');
  process.exit(1);
}
const { run } = await import(main.href);
await run(process.argv);

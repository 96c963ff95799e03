/**
 * The crash tests' stop points. With PATCHWARDEN_AGENT_TEST_BARRIER=<point> in its environment
 * the agent, on reaching that point of a job (a state's name, or `downloading-payload`,
 * `script`), writes the point's name to `<data-dir>/barrier-reached` and waits there for ever, so
 * a test can kill its whole process group at a known instant. Without the variable it is inert.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export function barrierFromEnv(dataDir: string, env: NodeJS.ProcessEnv = process.env): ((point: string) => Promise<void>) | undefined {
  const want = env.PATCHWARDEN_AGENT_TEST_BARRIER;
  if (!want) return undefined;
  return async (point: string) => {
    if (point !== want) return;
    writeFileSync(path.join(dataDir, 'barrier-reached'), `${point}\n`);
    await new Promise<never>(() => setInterval(() => {}, 1 << 30));
  };
}

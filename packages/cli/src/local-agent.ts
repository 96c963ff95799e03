/**
 * The built-in agent of `patchwarden start`: it enrolls this machine once (through a one-use
 * secret that is revoked right after) and reports its facts over real HTTP. It is report-only:
 * it installs nothing unless an administrator turns installs on for it.
 */
import { join } from 'node:path';
import { PatchwardenError } from '@patchwarden/core';
import { createSecret, revokeSecret, type RunningServer } from '@patchwarden/server';
import { checkinOnce, enrollAgent, loadState, runAgent, saveState, stateExists, type CheckinResult } from '@patchwarden/agent';

export const LOCAL_AGENT_DIR = 'local-agent';
const LOCAL_INTERVAL_SECONDS = 60;

async function enrollLocal(server: RunningServer, agentDir: string): Promise<void> {
  const db = server.database.db;
  const s = await createSecret(db, 'built-in agent (one use)', null, Date.now());
  try {
    await enrollAgent({ dataDir: agentDir, collect: { root: '/' }, server: server.url, secret: s.secret, installs: false, force: true, ...(server.tls ? { caSha256: server.tls.caSha256 } : {}) });
  } finally {
    await revokeSecret(db, s.id, Date.now());
  }
}

export async function startBuiltInAgent(server: RunningServer, dataDir: string): Promise<AbortController> {
  const agentDir = join(dataDir, LOCAL_AGENT_DIR);
  const collect = { root: '/' };
  if (!stateExists(agentDir)) await enrollLocal(server, agentDir);
  const state = loadState(agentDir);
  // the server may have moved to another port or to TLS: the identity stays, the address and the
  // certificate authority (read from this machine's own data directory) follow
  const caPem = server.tls?.caPem ?? null;
  if (state.server !== server.url || state.caPem !== caPem) {
    saveState(agentDir, { ...state, server: server.url, caPem });
    loadState(agentDir);
  }

  let first: CheckinResult;
  try {
    first = await checkinOnce({ dataDir: agentDir, collect });
  } catch (err) {
    // a fresh database (or another --database) does not know this identity: enroll anew
    if (!(err instanceof PatchwardenError && err.code === 'E_UNAUTHENTICATED')) throw err;
    await enrollLocal(server, agentDir);
    first = await checkinOnce({ dataDir: agentDir, collect });
  }
  console.log(
    `  This machine: device ${loadState(agentDir).deviceId}, ${first.packages} packages reported by the built-in agent (report-only: it installs nothing)`,
  );

  const controller = new AbortController();
  const loop = async () => {
    await new Promise((r) => setTimeout(r, LOCAL_INTERVAL_SECONDS * 1000).unref());
    // report-only: it takes no job, but hears "scan now" and watches the package database
    await runAgent({
      dataDir: agentDir,
      collect,
      intervalSeconds: LOCAL_INTERVAL_SECONDS,
      signal: controller.signal,
      onError: (err, retry) => console.error(`built-in agent: ${(err as Error).message} (retrying in ${Math.round(retry)} s)`),
      onJobError: () => {},
    });
  };
  loop().catch((err: Error) => console.error(`built-in agent stopped: ${err.message}`));
  return controller;
}

/**
 * Where audit entries go besides the database, as they are written: a JSON-lines file and syslog
 * (RFC 5424 over UDP, facility authpriv, one datagram per entry; the structured data carries the
 * sequence number and hash, so a collector can check the chain on its own copy too).
 */
import { createSocket, type Socket } from 'node:dgram';
import { appendFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { PatchwardenError } from '@patchwarden/core';
import type { AuditEntry } from './chain.js';
import type { AuditSink } from './log.js';

export function fileSink(path: string): AuditSink {
  return {
    write(e) {
      appendFileSync(path, `${JSON.stringify(e)}\n`, { mode: 0o600 });
    },
  };
}

const FACILITY_AUTHPRIV = 10;
const SEVERITY_NOTICE = 5;

/** SD-PARAM values escape `"`, `\` and `]` (RFC 5424 §6.3.3). */
const sdEscape = (s: string) => s.replace(/["\\\]]/g, (c) => `\\${c}`);

export function syslogLine(e: AuditEntry, host = hostname()): string {
  const pri = FACILITY_AUTHPRIV * 8 + SEVERITY_NOTICE;
  const ts = new Date(e.at).toISOString();
  const sd = `[patchwarden@32473 seq="${e.seq}" hash="${e.hash}" actor="${sdEscape(e.actor.name)}" action="${sdEscape(e.action)}"]`;
  const msg = JSON.stringify({ actor: e.actor, action: e.action, target: e.target, detail: e.detail, ip: e.ip });
  return `<${pri}>1 ${ts} ${host.slice(0, 255) || '-'} patchwarden - audit ${sd} ${msg}`;
}

/** `udp://host:port` (port 514 by default). */
export function parseSyslogUrl(url: string): { host: string; port: number } {
  const m = /^udp:\/\/(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(url);
  if (!m) throw new PatchwardenError('E_CONFIG_INVALID', `'${url}' is not a syslog address`, { hint: 'use udp://HOST:PORT, e.g. udp://127.0.0.1:514' });
  const port = m[2] ? Number(m[2]) : 514;
  if (port < 1 || port > 65535) throw new PatchwardenError('E_CONFIG_INVALID', `port ${port} is out of range`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function syslogSink(url: string, onError: (err: Error) => void = () => undefined): AuditSink {
  const { host, port } = parseSyslogUrl(url);
  const socket: Socket = createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('error', onError);
  socket.unref();
  return {
    write(e) {
      const buf = Buffer.from(syslogLine(e), 'utf8');
      socket.send(buf, port, host, (err) => err && onError(err));
    },
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

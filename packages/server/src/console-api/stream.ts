/**
 * Server-Sent Events for the console: one hub per app subscribes to the bus once and writes
 * every event to the open streams. At most `max` streams; each gets a `: ping` comment every
 * `pingMs`; a client that stops reading (more than 1 MiB queued) is cut off.
 */
import type { ServerResponse } from 'node:http';
import type { Kysely } from 'kysely';
import { PatchwardenError } from '@patchwarden/core';
import type { DB } from '../db/schema.js';
import type { BusEventName, BusEvents, EventBus } from './bus.js';

export const MAX_STREAMS = 100;
export const PING_MS = 15_000;
const MAX_QUEUED_BYTES = 1024 * 1024;
const HOSTNAME_CACHE = 20_000;

interface Stream {
  res: ServerResponse;
  timer: NodeJS.Timeout;
}

export class StreamHub {
  private readonly streams = new Set<Stream>();
  private readonly hostnames = new Map<string, string>();
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly bus: EventBus,
    private readonly db: Kysely<DB>,
    readonly max = MAX_STREAMS,
    readonly pingMs = PING_MS,
  ) {}

  get open(): number {
    return this.streams.size;
  }

  /** Refuses when `max` streams are open already. */
  checkCapacity(): void {
    if (this.streams.size >= this.max) {
      throw new PatchwardenError('E_RATE_LIMITED', `too many open event streams (at most ${this.max})`, {
        hint: 'close other console tabs, or retry in a while; the console also works without live updates',
      });
    }
  }

  /** Takes over `res` (already hijacked from Fastify) until the client goes away. */
  attach(res: ServerResponse): void {
    this.checkCapacity();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // the stream is the connection's last answer: when it ends, so does the socket (no wait at shutdown)
      connection: 'close',
      'x-accel-buffering': 'no',
    });
    res.write(': connected\nretry: 5000\n\n');
    const s: Stream = { res, timer: setInterval(() => this.write(s, ': ping\n\n'), this.pingMs) };
    s.timer.unref();
    this.streams.add(s);
    this.subscribe();
    // the client went away (it may only have half-closed): let go of the socket too
    const done = () => {
      this.detach(s);
      res.socket?.destroy();
    };
    res.once('close', done);
    res.once('error', done);
  }

  /** Ends every stream (the app is closing). */
  closeAll(): void {
    for (const s of [...this.streams]) {
      this.detach(s);
      // at shutdown the socket goes at once: a client that stopped reading would hold the close up
      s.res.destroy();
    }
  }

  private detach(s: Stream): void {
    if (!this.streams.delete(s)) return;
    clearInterval(s.timer);
    if (this.streams.size === 0 && this.unsubscribe) {
      this.unsubscribe();
      this.unsubscribe = null;
    }
  }

  private write(s: Stream, text: string): void {
    if (s.res.writableLength > MAX_QUEUED_BYTES) {
      this.detach(s);
      s.res.destroy();
      return;
    }
    s.res.write(text);
  }

  private broadcast<K extends BusEventName>(name: K, payload: BusEvents[K]): void {
    const text = `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
    for (const s of [...this.streams]) this.write(s, text);
  }

  private subscribe(): void {
    if (this.unsubscribe) return;
    const offs = [
      this.bus.on('checkin', (e) => {
        if (e.hostname !== null) {
          this.remember(e.deviceId, e.hostname);
          this.broadcast('checkin', e);
          return;
        }
        const known = this.hostnames.get(e.deviceId);
        if (known !== undefined) return this.broadcast('checkin', { ...e, hostname: known });
        this.db
          .selectFrom('devices')
          .select('hostname')
          .where('id', '=', e.deviceId)
          .executeTakeFirst()
          .then(
            (r) => {
              if (r) this.remember(e.deviceId, r.hostname);
              this.broadcast('checkin', { ...e, hostname: r?.hostname ?? null });
            },
            () => this.broadcast('checkin', e),
          );
      }),
      this.bus.on('job', (e) => this.broadcast('job', e)),
      this.bus.on('deployment', (e) => this.broadcast('deployment', e)),
    ];
    this.unsubscribe = () => offs.forEach((off) => off());
  }

  private remember(id: string, hostname: string): void {
    if (this.hostnames.size >= HOSTNAME_CACHE) this.hostnames.clear();
    this.hostnames.set(id, hostname);
  }
}

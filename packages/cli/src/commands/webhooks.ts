/**
 * `patchwarden webhooks`: URLs the server POSTs signed JSON to when something needs a person
 * (a failed job, a halted deployment, …), and what became of each delivery.
 */
import type { Command } from 'commander';
import { PatchwardenError, WEBHOOK_EVENTS } from '@patchwarden/core';
import { ApiClient, withClient, type ClientOptions } from '../client.js';
import { ago, printJson, table } from '../output.js';

type Flags = ClientOptions & { json?: boolean };

interface Webhook {
  id: string;
  url: string;
  events: string[];
  createdAt: string;
}
interface Delivery {
  id: string;
  event: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: string;
  lastAttemptAt: string | null;
  nextAttemptAt: string | null;
  deliveredAt: string | null;
}

/** `a,b` → events, each checked here so a typo is named before anything is sent. */
export function parseEvents(spec: string): string[] {
  const events = [...new Set(spec.split(',').map((s) => s.trim()).filter(Boolean))];
  const unknown = events.filter((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
  if (!events.length || unknown.length) {
    throw new PatchwardenError('E_VALIDATION', unknown.length ? `unknown event ${unknown.map((u) => `'${u}'`).join(', ')}` : 'no event given', {
      hint: `events: ${WEBHOOK_EVENTS.join(', ')}`,
    });
  }
  return events;
}

export function webhookCommands(program: Command): void {
  const webhooks = program
    .command('webhooks')
    .description('notify other systems: signed JSON POSTs when a job fails, a deployment halts, …')
    .addHelpText(
      'after',
      `
Events:
  deployment.halted        a deployment stopped (failure threshold crossed, or an administrator)
  job.failed               a job ended failed or rolled-back
  job.needs-attention      a job left a device that needs a person
  patch.exploited-needed   a patch for an exploited vulnerability is needed on devices
  ping                     a test delivery (\`webhooks test ID\`)

Every delivery is a POST with a JSON body {id, event, createdAt, data} and the headers
X-Patchwarden-Event, X-Patchwarden-Delivery, X-Patchwarden-Timestamp (Unix seconds) and
X-Patchwarden-Signature: sha256=HEX, the HMAC-SHA256 of "TIMESTAMP.BODY" keyed with the
webhook's secret. Check it (and that the timestamp is recent) before trusting the body;
verifyWebhook in @patchwarden/core does both. 2xx means delivered; anything else is retried
with growing delays, 8 attempts in all. Redirects are not followed.

Examples:
  patchwarden webhooks add https://chat.example.com/hooks/patching --events job.failed,deployment.halted
  patchwarden webhooks list
  patchwarden webhooks test 5f0c…                 queue a ping, then:
  patchwarden webhooks deliveries 5f0c…           status, attempts, last answer of each delivery
  patchwarden webhooks remove 5f0c…`,
    );

  withClient(
    webhooks
      .command('add')
      .description('subscribe a URL to events (the signing secret is shown once)')
      .argument('<url>', 'http or https URL, without a user name or password in it')
      .requiredOption('--events <list>', `comma-separated: ${WEBHOOK_EVENTS.join(', ')}`)
      .option('--secret <secret>', 'the signing secret to use (16 to 256 printable characters); default: the server makes a 256-bit one'),
  ).action(async (url: string, f: Flags & { events: string; secret?: string }) => {
    const events = parseEvents(f.events);
    const w = await ApiClient.from(f).call<Webhook & { secret: string }>('POST', '/api/v1/webhooks', { url, events, ...(f.secret ? { secret: f.secret } : {}) });
    if (f.json) return printJson(w);
    console.log(`webhook ${w.id} added: ${w.url} (${w.events.join(', ')})`);
    if (!f.secret) console.log(`Its signing secret, shown only now: give it to the receiver\n${w.secret}`);
    console.log(`try it: patchwarden webhooks test ${w.id}`);
  });

  withClient(webhooks.command('list').description('the webhooks and their events (never their secrets)')).action(async (f: Flags) => {
    const r = await ApiClient.from(f).call<{ items: Webhook[] }>('GET', '/api/v1/webhooks');
    if (f.json) return printJson(r);
    if (!r.items.length) return console.log('No webhooks yet: `patchwarden webhooks add URL --events job.failed,deployment.halted`.');
    console.log(
      table(r.items, [
        { header: 'id', get: (w) => w.id },
        { header: 'url', get: (w) => w.url },
        { header: 'events', get: (w) => w.events.join(',') },
        { header: 'created', get: (w) => w.createdAt },
      ]),
    );
  });

  withClient(webhooks.command('remove').description('remove a webhook; its pending deliveries are dropped').argument('<id>', 'webhook id')).action(async (id: string, f: Flags) => {
    const w = await ApiClient.from(f).call<Webhook>('DELETE', `/api/v1/webhooks/${encodeURIComponent(id)}`);
    if (f.json) return printJson(w);
    console.log(`webhook ${w.id} removed (${w.url})`);
  });

  withClient(webhooks.command('test').description('queue a ping delivery to a webhook').argument('<id>', 'webhook id')).action(async (id: string, f: Flags) => {
    const r = await ApiClient.from(f).call<{ deliveryId: string; event: string }>('POST', `/api/v1/webhooks/${encodeURIComponent(id)}/test`);
    if (f.json) return printJson(r);
    console.log(`ping queued as delivery ${r.deliveryId}; see what happened with: patchwarden webhooks deliveries ${id}`);
  });

  withClient(
    webhooks
      .command('deliveries')
      .description("a webhook's deliveries, newest first: status, attempts, last answer")
      .argument('<id>', 'webhook id')
      .option('--limit <n>', 'how many', '50')
      .option('--offset <n>', 'skip this many', '0'),
  ).action(async (id: string, f: Flags & { limit: string; offset: string }) => {
    const q = new URLSearchParams({ limit: f.limit, offset: f.offset });
    const r = await ApiClient.from(f).call<{ items: Delivery[]; total: number }>('GET', `/api/v1/webhooks/${encodeURIComponent(id)}/deliveries?${q}`);
    if (f.json) return printJson(r);
    if (!r.items.length) return console.log('No deliveries yet.');
    console.log(
      table(r.items, [
        { header: 'id', get: (d) => d.id },
        { header: 'event', get: (d) => d.event },
        { header: 'status', get: (d) => d.status },
        { header: 'attempts', get: (d) => d.attempts, align: 'right' },
        { header: 'last answer', get: (d) => (d.lastError ?? (d.lastStatus === null ? '' : `HTTP ${d.lastStatus}`)).slice(0, 60) },
        { header: 'created', get: (d) => d.createdAt },
        { header: 'last attempt', get: (d) => (d.lastAttemptAt ? ago(d.lastAttemptAt) : 'never') },
        { header: 'next attempt', get: (d) => d.nextAttemptAt ?? '' },
      ]),
    );
    if (r.total > r.items.length) console.log(`(${r.items.length} of ${r.total})`);
  });
}

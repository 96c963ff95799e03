/** Assembles the HTTP server: auth, errors, gzip bodies, OpenAPI docs, features, console. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifyCookie from '@fastify/cookie';
import fastifyRateLimit from '@fastify/rate-limit';
import { randomBytes } from 'node:crypto';
import fastifySwaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import type { DB } from './db/schema.js';
import type { Dialect } from './db/database.js';
import { registerAuth } from './http/auth.js';
import { registerErrorHandling } from './http/errors.js';
import { registerGzipBodies } from './http/gzip.js';
import { registerBodyDigest, registerSignatureCheck } from './http/device-signature.js';
import { DEFAULT_RATE_LIMITS, type AppContext, type RateLimits } from './http/context.js';
import { PatchwardenError } from '@patchwarden/core';
import { SetCache } from './inventory/store.js';
import { checkinRoutes } from './checkin/routes.js';
import { deviceRoutes } from './devices/routes.js';
import { groupRoutes } from './groups/routes.js';
import { enrollmentSecretRoutes } from './enrollment/routes.js';
import { ComplianceEngine } from './compliance/engine.js';
import { complianceRoutes } from './compliance/routes.js';
import { catalogRoutes } from './catalog/routes.js';
import { TufRepository } from './catalog/tuf/repo.js';
import { ephemeralRepoKeys, type LoadedKeys } from './catalog/tuf/keystore.js';
import { tufRoutes } from './catalog/tuf/routes.js';
import { bundleRoutes } from './catalog/bundle-routes.js';
import { siteRoutes } from './sites/routes.js';
import { MirrorRepository, refuseCatalogWrites } from './catalog/mirror/readonly.js';
import { MirrorService, type MirrorConfig } from './catalog/mirror/service.js';
import { deploymentRoutes } from './deployments/routes.js';
import { jobHistoryRoutes } from './deployments/job-history.js';
import { approvalRuleRoutes } from './approvals/routes.js';
import { JobWakeups } from './deployments/wakeups.js';
import { registerSecurityHeaders } from './http/security-headers.js';
import { testClockRoutes, type TestClock } from './http/test-clock.js';
import { mirrorRoutes } from './catalog/mirror/routes.js';
import { payloadRoutes } from './catalog/payload-routes.js';
import { webhookRoutes } from './notifications/routes.js';
import { WebhookWorker } from './notifications/worker.js';
import { consoleApiRoutes, EventBus } from './console-api/routes.js';
import { AuditLog, type AuditSink } from './audit/log.js';
import { registerAuditTrail } from './audit/record.js';
import { accessRoutes } from './auth/routes.js';
import { SESSION_COOKIE } from './auth/sessions.js';

export const SERVER_VERSION = '0.1.0';

export interface AppOptions {
  db: Kysely<DB>;
  dialect: Dialect;
  now?: () => number;
  checkinIntervalSeconds?: number;
  /** pino options, or false for no request log (tests, benchmarks). */
  logger?: boolean | { level: string };
  consoleDir?: string;
  /** the catalog's signing keys (from the data directory); tests get keys of their own */
  catalogKeys?: LoadedKeys;
  /**
   * A local patch server: the catalog is the central server's, mirrored byte for byte. No keys,
   * no root of its own, and the routes that would add to the catalog are refused.
   */
  mirror?: MirrorConfig;
  /** A clock tests may move forward over the API (`server --test-clock`); never in production. */
  testClock?: TestClock;
  /** The audit log's sealing key (the data directory's `keys/audit.key`); tests get a random one. */
  auditKey?: Buffer;
  /** where the newest audit link is anchored, outside the database */
  auditAnchorFile?: string;
  auditSinks?: AuditSink[];
  /** TLS: the key and certificate chain to serve with, and the CA devices pin */
  tls?: { key: string; cert: string; caPem: string; caSha256: string };
  /** requests per minute and client: sign-in attempts, enrollments, and everything else (0: no limit) */
  rateLimits?: RateLimits;
}



export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../console/dist', import.meta.url));

/** The assembled server, with the services that CLI commands on the same machine use directly. */
export type PatchwardenApp = FastifyInstance & { compliance: ComplianceEngine; catalogContext: AppContext; mirror: MirrorService | null; webhooks: WebhookWorker; audit: AuditLog };

export async function buildApp(opts: AppOptions): Promise<PatchwardenApp> {
  const app = Fastify({
    logger:
      opts.logger === false
        ? false
        : {
            level: typeof opts.logger === 'object' ? opts.logger.level : 'info',
            // tokens and secrets never reach the log
            redact: ['req.headers.authorization', 'req.headers.cookie'],
          },
    bodyLimit: 1024 * 1024,
    ...(opts.tls ? { https: { key: opts.tls.key, cert: opts.tls.cert } } : {}),
    // Every body schema is a strict zod object, which refuses a "__proto__" or "constructor"
    // key like any other unknown key (a test proves it), so the costly text scan for them
    // (two regular expressions over each body) would only repeat that check.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
    // a path parameter longer than the router's default of 100 would match no route (a
    // misleading "no route"): each route's own schema says how long its parameters may be
    routerOptions: { maxParamLength: 2048 },
    // what the router refuses before any route (a malformed or far too long path) still gets a coded answer
    frameworkErrors: (err: Error, _req: unknown, reply: FastifyReply) => {
      const pw = new PatchwardenError('E_VALIDATION', `the request path cannot be read: ${err.message}`, { hint: 'path parameters are percent-encoded and at most 2048 characters' });
      void reply.code(pw.httpStatus).send(pw.toBody());
    },
  }).withTypeProvider<ZodTypeProvider>();

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  const now = opts.now ?? Date.now;
  const ctx: AppContext = {
    db: opts.db,
    dialect: opts.dialect,
    sets: new SetCache(),
    compliance: new ComplianceEngine(opts.db, opts.dialect, now),
    tuf: opts.mirror ? new MirrorRepository(opts.db, now) : new TufRepository(opts.db, opts.catalogKeys ?? ephemeralRepoKeys(), now),
    now,
    checkinIntervalSeconds: opts.checkinIntervalSeconds ?? 300,
    wakeups: new JobWakeups(),
    version: SERVER_VERSION,
    bus: new EventBus(),
    rateLimits: opts.rateLimits ?? DEFAULT_RATE_LIMITS,
    tls: opts.tls ? { caPem: opts.tls.caPem, caSha256: opts.tls.caSha256 } : null,
  };

  // the signed catalog exists from the first start (local mode signs its own root)
  if (!opts.mirror && !(await ctx.tuf.initialized()) && (opts.catalogKeys ?? { local: true }).local !== false) await ctx.tuf.initialize();
  const mirror = opts.mirror ? new MirrorService(ctx, opts.mirror) : null;

  registerErrorHandling(app);
  registerSecurityHeaders(app);
  // the signed bytes are the bytes as sent: hashed before gzip is undone
  registerBodyDigest(app);
  registerGzipBodies(app);
  await app.register(fastifyCookie);
  // per client: its credential when it sends one, else its address (an agent fleet behind one
  // NAT address is told apart by device tokens)
  const limits = ctx.rateLimits;
  await app.register(fastifyRateLimit, {
    global: limits.apiPerMinute > 0,
    max: limits.apiPerMinute || 1,
    timeWindow: 60_000,
    keyGenerator: (req) => req.headers.authorization ?? req.cookies?.[SESSION_COOKIE] ?? req.ip,
    errorResponseBuilder: (_req, ctx) => {
      const err = new PatchwardenError('E_RATE_LIMITED', `too many requests: at most ${ctx.max} a minute from one client`, { hint: `wait ${Math.ceil(ctx.ttl / 1000)} s and try again` });
      return Object.assign(err, { statusCode: 429 });
    },
  });
  registerAuth(app, opts.db, now);
  registerSignatureCheck(app, opts.db, now);
  const audit = new AuditLog(opts.db, opts.auditKey ?? randomBytes(32), { anchorFile: opts.auditAnchorFile, sinks: opts.auditSinks ?? [] });
  app.addHook('onClose', () => audit.close());
  registerAuditTrail(app, audit, now);
  if (mirror) refuseCatalogWrites(app);

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Patchwarden API', version: SERVER_VERSION, description: 'Devices, facts and patches. Admin routes need `Authorization: Bearer <admin token>`.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/api/docs' });

  app.get('/api/health', { config: { auth: 'public' }, schema: { tags: ['server'], summary: 'Liveness and version' } }, async () => ({
    status: 'ok',
    version: SERVER_VERSION,
    database: ctx.dialect,
  }));
  await app.register(accessRoutes(ctx, audit, { secureCookies: !!opts.tls, loginPerMinute: limits.loginPerMinute }));

  await app.register(checkinRoutes(ctx));
  await app.register(deviceRoutes(ctx));
  await app.register(groupRoutes(ctx));
  await app.register(enrollmentSecretRoutes(ctx));
  await app.register(catalogRoutes(ctx));
  await app.register(tufRoutes(ctx));
  await app.register(bundleRoutes(ctx));
  await app.register(payloadRoutes(ctx));
  await app.register(complianceRoutes(ctx));
  await app.register(siteRoutes(ctx));
  await app.register(mirrorRoutes(ctx, mirror));
  await app.register(deploymentRoutes(ctx));
  await app.register(jobHistoryRoutes(ctx));
  if (opts.testClock) await app.register(testClockRoutes(ctx, opts.testClock));
  await app.register(approvalRuleRoutes(ctx));
  // the webhook outbox's sender: started by startServer, stopped when the app closes
  const webhooks = new WebhookWorker(opts.db, now);
  webhooks.log = app.log;
  app.addHook('onClose', () => webhooks.stop());
  await app.register(webhookRoutes(ctx, webhooks));
  await app.register(consoleApiRoutes(ctx));

  app.decorate('compliance', ctx.compliance);
  app.decorate('catalogContext', ctx);
  app.decorate('mirror', mirror);
  app.decorate('webhooks', webhooks);
  app.decorate('audit', audit);
  if (mirror) mirror.log = app.log;
  const consoleDir = opts.consoleDir ?? DEFAULT_CONSOLE_DIR;
  if (existsSync(consoleDir)) {
    await app.register(fastifyStatic, { root: consoleDir, wildcard: true, index: ['index.html'] });
  } else {
    app.get('/', { config: { auth: 'public' } }, async (_req, reply) =>
      reply.type('text/plain').send('The console is not built. Run `npm run build`, then reload.\n'),
    );
  }
  return app as unknown as PatchwardenApp;
}

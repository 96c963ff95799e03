import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { AppContext } from '../http/context.js';
import {
  applyApprovalRules,
  ApprovalRuleInput,
  createApprovalRule,
  CVE_RE,
  deleteApprovalRule,
  exploitedNeededPatches,
  listApprovalRules,
  listExploited,
  setExploited,
} from './rules.js';

export function approvalRuleRoutes(ctx: AppContext): FastifyPluginAsyncZod {
  const { db } = ctx;
  return async (app) => {
    const admin = { auth: 'admin' as const };
    app.post(
      '/api/v1/approval-rules',
      { config: admin, schema: { tags: ['approvals'], summary: 'Add an approval rule for a group (all its conditions must hold)', body: ApprovalRuleInput } },
      async (req, reply) => reply.status(201).send(await createApprovalRule(db, ctx.now(), req.body)),
    );
    app.get('/api/v1/approval-rules', { config: admin, schema: { tags: ['approvals'], summary: 'List approval rules' } }, async () => {
      const items = await listApprovalRules(db);
      return { items, total: items.length };
    });
    app.delete(
      '/api/v1/approval-rules/:id',
      { config: admin, schema: { tags: ['approvals'], summary: 'Delete an approval rule (the approvals it made stay)', params: z.object({ id: z.uuid() }) } },
      async (req, reply) => {
        await deleteApprovalRule(db, req.params.id);
        return reply.status(204).send();
      },
    );
    app.post(
      '/api/v1/approval-rules/apply',
      { config: admin, schema: { tags: ['approvals'], summary: 'Apply every approval rule now; answers the approvals made (manual decisions are never replaced)' } },
      async () => {
        const approved = await applyApprovalRules(db, ctx.now());
        return { approved, total: approved.length };
      },
    );

    const Cve = z.object({ id: z.string().regex(CVE_RE, 'a CVE id is CVE-YYYY-NNNN') });
    app.post(
      '/api/v1/cves/:id/exploited',
      { config: admin, schema: { tags: ['approvals'], summary: 'Flag a CVE as exploited (or clear the flag)', params: Cve, body: z.strictObject({ exploited: z.boolean() }) } },
      async (req) => setExploited(db, ctx.now(), req.params.id, req.body.exploited),
    );
    app.get('/api/v1/cves/exploited', { config: admin, schema: { tags: ['approvals'], summary: 'CVEs flagged as exploited' } }, async () => listExploited(db));
    app.get(
      '/api/v1/cves/exploited/needed',
      { config: admin, schema: { tags: ['approvals'], summary: 'Patches that fix an exploited CVE and that at least one device needs' } },
      async () => {
        const items = await exploitedNeededPatches(db);
        return { items, total: items.length };
      },
    );
  };
}

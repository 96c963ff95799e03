import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { can } from '../http/auth.js';
import { approvalRuleGroup, assertGroupInScope, assertUnlimited } from '../auth/scope.js';
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
    app.post(
      '/api/v1/approval-rules',
      { config: can('approve'), schema: { tags: ['approvals'], summary: 'Add an approval rule for a group (all its conditions must hold)', body: ApprovalRuleInput } },
      async (req, reply) => {
        await assertGroupInScope(db, req.admin, req.body.group);
        return reply.status(201).send(await createApprovalRule(db, ctx.now(), req.body));
      },
    );
    app.get('/api/v1/approval-rules', { config: can('view'), schema: { tags: ['approvals'], summary: 'List approval rules' } }, async () => {
      const items = await listApprovalRules(db);
      return { items, total: items.length };
    });
    app.delete(
      '/api/v1/approval-rules/:id',
      { config: can('approve'), schema: { tags: ['approvals'], summary: 'Delete an approval rule (the approvals it made stay)', params: z.object({ id: z.uuid() }) } },
      async (req, reply) => {
        const group = await approvalRuleGroup(db, req.params.id);
        if (group) await assertGroupInScope(db, req.admin, group);
        await deleteApprovalRule(db, req.params.id);
        return reply.status(204).send();
      },
    );
    app.post(
      '/api/v1/approval-rules/apply',
      { config: can('approve'), schema: { tags: ['approvals'], summary: 'Apply every approval rule now; answers the approvals made (manual decisions are never replaced)' } },
      async (req) => {
        assertUnlimited(req.admin, 'applying every approval rule');
        const approved = await applyApprovalRules(db, ctx.now());
        return { approved, total: approved.length };
      },
    );

    const Cve = z.object({ id: z.string().regex(CVE_RE, 'a CVE id is CVE-YYYY-NNNN') });
    app.post(
      '/api/v1/cves/:id/exploited',
      { config: can('approve'), schema: { tags: ['approvals'], summary: 'Flag a CVE as exploited (or clear the flag)', params: Cve, body: z.strictObject({ exploited: z.boolean() }) } },
      async (req) => {
        assertUnlimited(req.admin, 'flagging an exploited CVE');
        return setExploited(db, ctx.now(), req.params.id, req.body.exploited);
      },
    );
    app.get('/api/v1/cves/exploited', { config: can('view'), schema: { tags: ['approvals'], summary: 'CVEs flagged as exploited' } }, async () => listExploited(db));
    app.get(
      '/api/v1/cves/exploited/needed',
      { config: can('view'), schema: { tags: ['approvals'], summary: 'Patches that fix an exploited CVE and that at least one device needs' } },
      async () => {
        const items = await exploitedNeededPatches(db);
        return { items, total: items.length };
      },
    );
  };
}

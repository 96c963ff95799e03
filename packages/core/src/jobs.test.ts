import { describe, expect, it } from 'vitest';
import { AgentJob, isFinalJobState, JOB_REPORT_LIMITS, JOB_STATES, JobReport } from './jobs.js';

const install = {
  id: 'job_0123456789',
  kind: 'install',
  deploymentId: 'dep_0123456789',
  patch: { id: 'debian/openssl-3.0.15-1', revision: 2 },
  target: 'debian/openssl-3.0.15-1.json',
  notBefore: '2026-11-26T10:00:00.000Z',
  deadline: null,
};

describe('job protocol', () => {
  it('lists the states of DESIGN.md in order, the last four final', () => {
    expect(JOB_STATES[0]).toBe('queued');
    expect(JOB_STATES.filter(isFinalJobState)).toEqual(['done', 'failed', 'rolled-back', 'needs-attention']);
  });

  it('accepts install and undo jobs; undo names the install job', () => {
    expect(AgentJob.parse(install)).toEqual(install);
    expect(AgentJob.safeParse({ ...install, kind: 'undo', undoes: 'job_9876543210' }).success).toBe(true);
    expect(AgentJob.safeParse({ ...install, kind: 'undo' }).success).toBe(false);
    expect(AgentJob.safeParse({ ...install, target: '../etc/passwd.json' }).success).toBe(false);
    expect(AgentJob.safeParse({ ...install, id: 'a/b' }).success).toBe(false);
  });

  it('bounds reports and accepts only final states', () => {
    const ok = { jobId: 'job_0123456789', state: 'done', events: [{ at: '2026-11-26T10:00:00Z', state: 'installing' }] };
    expect(JobReport.parse(ok).detail).toEqual({});
    expect(JobReport.safeParse({ ...ok, state: 'installing' }).success).toBe(false);
    expect(JobReport.safeParse({ ...ok, detail: { audit: 'x'.repeat(JOB_REPORT_LIMITS.detail + 1) } }).success).toBe(false);
    const many = Array.from({ length: JOB_REPORT_LIMITS.events + 1 }, () => ok.events[0]);
    expect(JobReport.safeParse({ ...ok, events: many }).success).toBe(false);
    expect(JobReport.safeParse({ ...ok, extra: 1 }).success).toBe(false);
  });
});

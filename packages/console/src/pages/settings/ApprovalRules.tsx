import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { apiGet, apiSend } from '../../api/client';
import type { ApprovalRule, Page } from '../../api/types';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { splitList } from '../../components/format';
import { RelativeTime } from '../../components/RelativeTime';
import { useGroups } from './Groups';

export function ApprovalRules() {
  const queryClient = useQueryClient();
  const groups = useGroups();
  const rules = useQuery({ queryKey: ['approval-rules'], queryFn: ({ signal }) => apiGet<Page<ApprovalRule>>('/approval-rules', { signal }) });
  const [group, setGroup] = useState('');
  const [minSeverity, setMinSeverity] = useState('');
  const [vendors, setVendors] = useState('');
  const [minAge, setMinAge] = useState('');
  const [exploitedOnly, setExploitedOnly] = useState(false);
  const [requireTestPass, setRequireTestPass] = useState(false);
  const [toDelete, setToDelete] = useState<ApprovalRule | null>(null);
  const [announce, setAnnounce] = useState('');
  const names = groups.data?.items.map((g) => g.name) ?? [];
  const chosen = group || names[0] || '';

  const create = useMutation({
    mutationFn: (body: Record<string, unknown>) => apiSend<ApprovalRule>('POST', '/approval-rules', { json: body }),
    onSuccess: (r) => {
      setAnnounce(`Rule added for ${r.group}.`);
      void queryClient.invalidateQueries({ queryKey: ['approval-rules'] });
    },
  });
  const remove = useMutation({
    mutationFn: (r: ApprovalRule) => apiSend<null>('DELETE', `/approval-rules/${encodeURIComponent(r.id)}`),
    onSuccess: (_x, r) => {
      setToDelete(null);
      setAnnounce(`Rule for ${r.group} deleted.`);
      void queryClient.invalidateQueries({ queryKey: ['approval-rules'] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const v = splitList(vendors);
    create.mutate({
      group: chosen,
      ...(minSeverity ? { minSeverity } : {}),
      ...(v.length ? { vendors: v } : {}),
      ...(minAge !== '' ? { minAgeDays: Number(minAge) } : {}),
      exploitedOnly,
      requireTestPass,
    });
  };
  return (
    <section className="card card--flush" id="settings-rules" aria-labelledby="rules-title" data-testid="settings-approval-rules">
      <h2 id="rules-title" className="card__title">Approval rules</h2>
      <p className="visually-hidden" aria-live="polite">{announce}</p>
      {rules.isPending ? <Loading label="Loading rules…" /> : !rules.data ? (
        <ErrorNotice title="Could not load approval rules" error={rules.error} onRetry={() => void rules.refetch()} />
      ) : (
        <div className="table-wrap">
          <table className="table table--compact">
            <caption className="visually-hidden">Approval rules</caption>
            <thead><tr><th scope="col">Group</th><th scope="col">Conditions</th><th scope="col">Created</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              {rules.data.items.map((r) => (
                <tr key={r.id}>
                  <th scope="row">{r.group}</th>
                  <td>{conditions(r)}</td>
                  <td className="nowrap"><RelativeTime iso={r.createdAt} /></td>
                  <td><button type="button" className="button button--small" onClick={() => {
                    remove.reset();
                    setToDelete(r);
                  }}>Delete<span className="visually-hidden"> rule for {r.group}: {conditions(r)}</span></button></td>
                </tr>
              ))}
              {rules.data.items.length === 0 ? <tr><td colSpan={4} className="table__empty">No approval rules: patches are approved by hand.</td></tr> : null}
            </tbody>
          </table>
        </div>
      )}
      <form className="card__body form" onSubmit={submit} aria-labelledby="rule-create-title">
        <h3 id="rule-create-title" className="subhead">Add a rule</h3>
        <p className="field__help">A patch is approved for the group when all the conditions hold.</p>
        <div className="form-grid">
          <div className="field">
            <label htmlFor="rule-group" className="field__label">Rule group</label>
            <select id="rule-group" className="input" value={chosen} onChange={(e) => setGroup(e.target.value)}>
              {names.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor="rule-severity" className="field__label">Minimum severity</label>
            <select id="rule-severity" className="input" value={minSeverity} onChange={(e) => setMinSeverity(e.target.value)}>
              <option value="">any</option>
              {['critical', 'high', 'medium', 'low'].map((s) => <option key={s} value={s}>{s}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor="rule-vendors" className="field__label">Vendors</label>
            <input id="rule-vendors" className="input" value={vendors} placeholder="debian, custom" onChange={(e) => setVendors(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="rule-age" className="field__label">Minimum age (days)</label>
            <input id="rule-age" type="number" min={0} max={3650} className="input" value={minAge} onChange={(e) => setMinAge(e.target.value)} />
          </div>
        </div>
        <div className="field field--check">
          <input id="rule-exploited" type="checkbox" checked={exploitedOnly} onChange={(e) => setExploitedOnly(e.target.checked)} />
          <label htmlFor="rule-exploited">Only patches fixing an exploited CVE</label>
        </div>
        <div className="field field--check">
          <input id="rule-testpass" type="checkbox" checked={requireTestPass} onChange={(e) => setRequireTestPass(e.target.checked)} />
          <label htmlFor="rule-testpass">Only patches that passed the test ring</label>
        </div>
        {create.isError ? <ErrorNotice title="The rule was not added" error={create.error} /> : null}
        <button type="submit" className="button button--primary" disabled={!chosen || create.isPending}>Add rule</button>
      </form>
      <ConfirmDialog open={toDelete !== null} title="Delete this approval rule?" confirmLabel="Delete rule" danger busy={remove.isPending}
        onCancel={() => setToDelete(null)} onConfirm={() => toDelete && remove.mutate(toDelete)}>
        <p>The approvals it already made stay.</p>
        {remove.isError ? <ErrorNotice title="The rule was not deleted" error={remove.error} /> : null}
      </ConfirmDialog>
    </section>
  );
}

function conditions(r: ApprovalRule): string {
  const c: string[] = [];
  if (r.minSeverity) c.push(`severity ≥ ${r.minSeverity}`);
  if (r.vendors?.length) c.push(`vendor ${r.vendors.join(' or ')}`);
  if (r.minAgeDays !== null) c.push(`released ≥ ${r.minAgeDays} days ago`);
  if (r.exploitedOnly) c.push('fixes an exploited CVE');
  if (r.requireTestPass) c.push('passed the test ring');
  return c.join(', ') || 'every patch';
}

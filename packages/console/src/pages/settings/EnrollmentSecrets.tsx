import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { apiGet, apiSend } from '../../api/client';
import type { EnrollmentSecretInfo } from '../../api/types';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { RelativeTime } from '../../components/RelativeTime';
import { StateBadge } from '../../components/Severity';
import { useGroups } from './Groups';
import { OnceSecret } from './OnceSecret';

export function EnrollmentSecrets() {
  const queryClient = useQueryClient();
  const groups = useGroups();
  const secrets = useQuery({
    queryKey: ['enrollment-secrets'],
    queryFn: ({ signal }) => apiGet<{ items: EnrollmentSecretInfo[] }>('/enrollment-secrets', { signal }),
  });
  const [name, setName] = useState('');
  const [group, setGroup] = useState('');
  const [shown, setShown] = useState<EnrollmentSecretInfo | null>(null);
  const [toRevoke, setToRevoke] = useState<EnrollmentSecretInfo | null>(null);
  const [announce, setAnnounce] = useState('');
  const create = useMutation({
    mutationFn: () => apiSend<EnrollmentSecretInfo>('POST', '/enrollment-secrets', { json: { name: name.trim(), group: group || null } }),
    onSuccess: (s) => {
      setShown(s);
      setName('');
      void queryClient.invalidateQueries({ queryKey: ['enrollment-secrets'] });
    },
  });
  const revoke = useMutation({
    mutationFn: (s: EnrollmentSecretInfo) => apiSend<EnrollmentSecretInfo>('POST', `/enrollment-secrets/${encodeURIComponent(s.id)}/revoke`),
    onSuccess: (_r, s) => {
      setToRevoke(null);
      setAnnounce(`Secret ${s.name} revoked.`);
      void queryClient.invalidateQueries({ queryKey: ['enrollment-secrets'] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <section className="card card--flush" id="settings-secrets" aria-labelledby="secrets-title" data-testid="settings-enrollment-secrets">
      <h2 id="secrets-title" className="card__title">Enrollment secrets</h2>
      <p className="visually-hidden" aria-live="polite">{announce}</p>
      {shown?.secret ? (
        <div className="card__body">
          <OnceSecret label={`New enrollment secret “${shown.name}”`} value={shown.secret} onDismiss={() => setShown(null)} />
          <p className="field__help">Enroll an agent with <code className="command">patchwarden agent enroll --server URL --secret {shown.secret}</code></p>
        </div>
      ) : null}
      {secrets.isPending ? <Loading label="Loading secrets…" /> : !secrets.data ? (
        <ErrorNotice title="Could not load enrollment secrets" error={secrets.error} onRetry={() => void secrets.refetch()} />
      ) : (
        <div className="table-wrap">
          <table className="table table--compact">
            <caption className="visually-hidden">Enrollment secrets</caption>
            <thead>
              <tr><th scope="col">Name</th><th scope="col">Group</th><th scope="col">Status</th><th scope="col" className="num">Uses</th>
                <th scope="col">Last used</th><th scope="col">Created</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr>
            </thead>
            <tbody>
              {secrets.data.items.map((s) => (
                <tr key={s.id}>
                  <th scope="row">{s.name}</th>
                  <td>{s.group?.name ?? <span className="muted">—</span>}</td>
                  <td><StateBadge state={s.revokedAt ? 'revoked' : 'active'} /></td>
                  <td className="num">{s.uses}</td>
                  <td className="nowrap"><RelativeTime iso={s.lastUsedAt} /></td>
                  <td className="nowrap"><RelativeTime iso={s.createdAt} /></td>
                  <td>
                    {s.revokedAt ? null : (
                      <button type="button" className="button button--small" onClick={() => {
                        revoke.reset();
                        setToRevoke(s);
                      }}>Revoke<span className="visually-hidden"> {s.name}</span></button>
                    )}
                  </td>
                </tr>
              ))}
              {secrets.data.items.length === 0 ? <tr><td colSpan={7} className="table__empty">No enrollment secrets.</td></tr> : null}
            </tbody>
          </table>
        </div>
      )}
      <form className="card__body form" onSubmit={submit} aria-labelledby="secret-create-title">
        <h3 id="secret-create-title" className="subhead">Create a secret</h3>
        <div className="form-grid">
          <div className="field">
            <label htmlFor="secret-name" className="field__label">Secret name</label>
            <input id="secret-name" className="input" value={name} maxLength={100} autoComplete="off" onChange={(e) => setName(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="secret-group" className="field__label">Put enrolled devices in group</label>
            <select id="secret-group" className="input" value={group} onChange={(e) => setGroup(e.target.value)}>
              <option value="">no group</option>
              {(groups.data?.items ?? []).filter((g) => g.kind === 'static').map((g) => <option key={g.id} value={g.name}>{g.name}</option>)}
            </select>
          </div>
        </div>
        {create.isError ? <ErrorNotice title="The secret was not created" error={create.error} /> : null}
        <button type="submit" className="button button--primary" disabled={create.isPending || name.trim() === ''}>Create secret</button>
      </form>
      <ConfirmDialog open={toRevoke !== null} title="Revoke this enrollment secret?" confirmLabel="Revoke secret" danger busy={revoke.isPending}
        onCancel={() => setToRevoke(null)} onConfirm={() => toRevoke && revoke.mutate(toRevoke)}>
        <p>Agents can no longer enroll with <strong>{toRevoke?.name}</strong>. Devices already enrolled are not affected.</p>
        {revoke.isError ? <ErrorNotice title="The secret was not revoked" error={revoke.error} /> : null}
      </ConfirmDialog>
    </section>
  );
}

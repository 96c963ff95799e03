import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { apiGet, apiSend, withQuery } from '../../api/client';
import type { Group, GroupMembers } from '../../api/types';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { formatNumber } from '../../components/format';
import { devicePath, href } from '../../router';

export function useGroups() {
  return useQuery({ queryKey: ['groups'], queryFn: ({ signal }) => apiGet<{ items: Group[] }>('/groups', { signal }) });
}

const QUERY_EXAMPLE = '{ "all": [ { "os": { "id": "debian" } }, { "label": "env=prod" } ] }';

export function Groups() {
  const queryClient = useQueryClient();
  const groups = useGroups();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [kind, setKind] = useState<'static' | 'dynamic'>('static');
  const [queryText, setQueryText] = useState('');
  const [queryError, setQueryError] = useState<string | null>(null);
  const [announce, setAnnounce] = useState('');
  const create = useMutation({
    mutationFn: (body: Record<string, unknown>) => apiSend<Group>('POST', '/groups', { json: body }),
    onSuccess: (g) => {
      setAnnounce(`Group ${g.name} created${g.kind === 'dynamic' ? ` with ${g.deviceCount} members` : ''}.`);
      setName('');
      setDescription('');
      setQueryText('');
      void queryClient.invalidateQueries({ queryKey: ['groups'] });
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setQueryError(null);
    const body: Record<string, unknown> = { name: name.trim(), description: description.trim() };
    if (kind === 'dynamic') {
      try {
        body.query = JSON.parse(queryText) as unknown;
      } catch (err) {
        setQueryError(`The query is not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
    }
    create.mutate(body);
  };
  return (
    <section className="card card--flush" id="settings-groups" aria-labelledby="groups-title" data-testid="settings-groups">
      <h2 id="groups-title" className="card__title">Groups</h2>
      {groups.isPending ? <Loading label="Loading groups…" /> : !groups.data ? (
        <ErrorNotice title="Could not load groups" error={groups.error} onRetry={() => void groups.refetch()} />
      ) : (
        <div className="table-wrap">
          <table className="table table--compact">
            <caption className="visually-hidden">Groups</caption>
            <thead>
              <tr><th scope="col">Name</th><th scope="col">Kind</th><th scope="col">Description</th><th scope="col" className="num">Members</th><th scope="col"><span className="visually-hidden">Members list</span></th></tr>
            </thead>
            <tbody>
              {groups.data.items.map((g) => <GroupRow key={g.id} group={g} />)}
              {groups.data.items.length === 0 ? <tr><td colSpan={5} className="table__empty">No groups yet.</td></tr> : null}
            </tbody>
          </table>
        </div>
      )}
      <form className="card__body form" onSubmit={submit} aria-labelledby="group-create-title">
        <h3 id="group-create-title" className="subhead">Create a group</h3>
        <div className="form-grid">
          <div className="field">
            <label htmlFor="group-name" className="field__label">Group name</label>
            <input id="group-name" className="input" value={name} required maxLength={100} autoComplete="off" onChange={(e) => setName(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor="group-description" className="field__label">Description</label>
            <input id="group-description" className="input" value={description} maxLength={1000} onChange={(e) => setDescription(e.target.value)} />
          </div>
          <fieldset className="checks">
            <legend className="field__label">Membership</legend>
            <div className="radio-row">
              <input type="radio" id="group-kind-static" name="group-kind" checked={kind === 'static'} onChange={() => setKind('static')} />
              <label htmlFor="group-kind-static">Static (devices are put in it)</label>
            </div>
            <div className="radio-row">
              <input type="radio" id="group-kind-dynamic" name="group-kind" checked={kind === 'dynamic'} onChange={() => setKind('dynamic')} />
              <label htmlFor="group-kind-dynamic">Dynamic (a device query)</label>
            </div>
          </fieldset>
        </div>
        {kind === 'dynamic' ? (
          <div className="field">
            <label htmlFor="group-query" className="field__label">Device query (JSON)</label>
            <textarea id="group-query" className="input mono" rows={4} value={queryText} spellCheck={false} placeholder={QUERY_EXAMPLE}
              aria-describedby="group-query-help" aria-invalid={queryError ? true : undefined} onChange={(e) => setQueryText(e.target.value)} />
            <p id="group-query-help" className="field__help">all / any / not of os, arch, label, hostname, package and group tests. Example: <code>{QUERY_EXAMPLE}</code></p>
            {queryError ? <p className="field__error" role="alert">{queryError}</p> : null}
          </div>
        ) : null}
        {create.isError ? <ErrorNotice title="The group was not created" error={create.error} /> : null}
        <p className="visually-hidden" aria-live="polite">{announce}</p>
        {create.isSuccess ? <p className="notice notice--info">{announce}</p> : null}
        <button type="submit" className="button button--primary" disabled={create.isPending || name.trim() === ''}>Create group</button>
      </form>
    </section>
  );
}

function GroupRow({ group }: { group: Group }) {
  const [open, setOpen] = useState(false);
  const panel = `group-members-${group.id}`;
  return (
    <>
      <tr>
        <th scope="row" className="cell-strong">{group.name}</th>
        <td>{group.kind}{group.testRing ? <span className="cell-sub">test ring</span> : null}</td>
        <td className="break">{group.description || <span className="muted">—</span>}
          {group.kind === 'dynamic' ? <code className="cell-sub mono break">{JSON.stringify(group.query)}</code> : null}</td>
        <td className="num">{formatNumber(group.deviceCount)}</td>
        <td>
          <button type="button" className="button button--small" aria-expanded={open} aria-controls={panel} onClick={() => setOpen((o) => !o)}>
            Members<span className="visually-hidden"> of {group.name}</span>
          </button>
        </td>
      </tr>
      {open ? <tr className="row-detail"><td colSpan={5} id={panel}><Members name={group.name} /></td></tr> : null}
    </>
  );
}

function Members({ name }: { name: string }) {
  const q = useQuery({
    queryKey: ['group-members', name],
    queryFn: ({ signal }) => apiGet<GroupMembers>(withQuery(`/groups/${encodeURIComponent(name)}/members`, { limit: 100 }), { signal }),
  });
  if (q.isPending) return <Loading label="Loading members…" />;
  if (!q.data) return <ErrorNotice title="Could not load members" error={q.error} />;
  if (q.data.items.length === 0) return <p className="muted">No active devices.</p>;
  return (
    <div>
      <ul className="inline-list">
        {q.data.items.map((d) => <li key={d.id}><a href={href(devicePath(d.id))}>{d.hostname}</a></li>)}
      </ul>
      {q.data.total > q.data.items.length ? <p className="muted">Showing {q.data.items.length} of {formatNumber(q.data.total)}.</p> : null}
    </div>
  );
}

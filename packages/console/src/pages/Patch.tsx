import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type ReactNode } from 'react';
import { apiGet, apiSend, isMissingRoute, withQuery } from '../api/client';
import type { Approval, Group, Page, PatchManifestView, PatchRelations, PatchState } from '../api/types';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { offsetFromPage } from '../components/format';
import { PageHeading } from '../components/PageHeading';
import { EmptyRow, Pager } from '../components/Pager';
import { RelativeTime } from '../components/RelativeTime';
import { SeverityBadge, StateBadge } from '../components/Severity';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { devicePath, href, newDeploymentPath, patchesPath, patchPath, updateParams } from '../router';
import { RelationGraph } from './patch/RelationGraph';

const PAGE_SIZE = 50;

export function PatchPage({ id, params }: { id: string; params: URLSearchParams }) {
  const query = useQuery({
    queryKey: ['catalog', 'patch', id],
    queryFn: ({ signal }) => apiGet<{ digest: string; manifest: PatchManifestView }>(withQuery('/catalog/patch', { id }), { signal }),
  });
  const m = query.data?.manifest;
  const digest = query.data?.digest ?? '';
  useDocumentTitle(m ? m.id : 'Patch');
  return (
    <>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <ol>
          <li><a href={href(patchesPath)}>Patches</a></li>
          <li aria-current="page">{id}</li>
        </ol>
      </nav>
      <div className="page-header">
        <PageHeading page={`patch:${id}`}><span className="mono">{id}</span></PageHeading>
        {m ? <SeverityBadge severity={m.severity} /> : null}
        {m ? (
          <a className="button button--primary page-header__action" href={href(newDeploymentPath, { patch: m.id })}>Deploy this patch</a>
        ) : null}
      </div>
      {query.isPending ? (
        <Loading label="Loading patch…" />
      ) : !m ? (
        <ErrorNotice title="Could not load this patch" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          <section className="card" aria-labelledby="manifest-title">
            <h2 id="manifest-title" className="card__title">{m.title}</h2>
            <dl className="facts">
              <Fact term="Revision">{m.revision}</Fact>
              <Fact term="Vendor">{m.vendor ?? '—'}</Fact>
              <Fact term="Product">{m.product ?? '—'}</Fact>
              <Fact term="Released">{m.releaseDate ?? '—'}</Fact>
              <Fact term="Restart">{m.restart ? `${m.restart.reboot}${m.restart.kernel ? ' (kernel)' : ''}` : '—'}</Fact>
              <Fact term="CVEs">{m.cves?.length ? <span className="mono break">{m.cves.join(', ')}</span> : '—'}</Fact>
              <Fact term="Advisories">{m.advisories?.length ? <span className="break">{m.advisories.join(', ')}</span> : '—'}</Fact>
              <Fact term="Digest"><code className="mono break" title={digest}>{digest.slice(0, 16)}</code></Fact>
            </dl>
            {m.description ? <p className="description">{m.description}</p> : null}
            <details className="details">
              <summary>Full manifest (JSON)</summary>
              <pre className="pre">{JSON.stringify(m, null, 2)}</pre>
            </details>
          </section>
          <Relations id={m.id} manifest={m} />
          <div className="grid-2">
            <Approvals patch={m.id} />
            <PatchDevices patch={m.id} params={params} />
          </div>
        </>
      )}
    </>
  );
}

function Fact({ term, children }: { term: string; children: ReactNode }) {
  return <div className="facts__row"><dt>{term}</dt><dd>{children}</dd></div>;
}

function Relations({ id, manifest }: { id: string; manifest: PatchManifestView }) {
  const query = useQuery({
    queryKey: ['catalog', 'relations', id],
    queryFn: ({ signal }) => apiGet<PatchRelations>(withQuery('/catalog/patch/relations', { id }), { signal }),
    retry: false,
  });
  // Without the relations route, the manifest's own links (forward only) still say something.
  const fallback: PatchRelations | undefined = query.isError && isMissingRoute(query.error) ? {
    requires: (manifest.requires ?? []).map((x) => ({ id: x, title: null })),
    supersedes: (manifest.supersedes ?? []).map((x) => ({ id: x, title: null })),
    conflicts: (manifest.conflicts ?? []).map((x) => ({ id: x, title: null })),
    requiredBy: [], supersededBy: [], conflictedBy: [],
  } : undefined;
  const rel = query.data ?? fallback;
  return (
    <section className="card" aria-labelledby="relations-title" data-testid="patch-relations">
      <h2 id="relations-title" className="card__title">Related patches</h2>
      {query.isPending ? <Loading label="Loading relations…" /> : !rel ? (
        <ErrorNotice title="Could not load related patches" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          {fallback ? <p className="muted">Only this patch’s own links are shown: the server does not list reverse relations.</p> : null}
          <RelationGraph id={id} relations={rel} />
        </>
      )}
    </section>
  );
}

function Approvals({ patch }: { patch: string }) {
  const queryClient = useQueryClient();
  const groups = useQuery({ queryKey: ['groups'], queryFn: ({ signal }) => apiGet<{ items: Group[] }>('/groups', { signal }) });
  const approvals = useQuery({
    queryKey: ['approvals', patch],
    queryFn: ({ signal }) => apiGet<Page<Approval>>(withQuery('/approvals', { patch, limit: 1000 }), { signal }),
  });
  const [announce, setAnnounce] = useState('');
  const decide = useMutation({
    mutationFn: (v: { group: string; decision: 'approve' | 'decline' }) =>
      apiSend<Approval>('POST', '/approvals', { json: { patch, group: v.group, decision: v.decision } }),
    onSuccess: (a) => {
      setAnnounce(`${a.decision === 'approve' ? 'Approved' : 'Declined'} for ${a.group}.`);
      void queryClient.invalidateQueries({ queryKey: ['approvals', patch] });
    },
  });
  const byGroup = new Map((approvals.data?.items ?? []).map((a) => [a.group, a]));
  return (
    <section className="card card--flush" aria-labelledby="approvals-title" data-testid="patch-approvals">
      <h2 id="approvals-title" className="card__title">Approvals by group</h2>
      <p className="visually-hidden" aria-live="polite">{announce}</p>
      {decide.isError ? <ErrorNotice title="The server refused this decision" error={decide.error} /> : null}
      {groups.isPending || approvals.isPending ? <Loading label="Loading approvals…" /> : !groups.data ? (
        <ErrorNotice title="Could not load groups" error={groups.error} onRetry={() => void groups.refetch()} />
      ) : !approvals.data ? (
        <ErrorNotice title="Could not load approvals" error={approvals.error} onRetry={() => void approvals.refetch()} />
      ) : groups.data.items.length === 0 ? (
        <p className="card__note muted">No groups yet: create one in Settings to approve patches for it.</p>
      ) : (
        <div className="table-wrap">
          <table className="table table--compact">
            <caption className="visually-hidden">Approvals of {patch} by group</caption>
            <thead><tr><th scope="col">Group</th><th scope="col">Decision</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              {groups.data.items.map((g) => {
                const a = byGroup.get(g.name);
                const busy = decide.isPending && decide.variables?.group === g.name;
                return (
                  <tr key={g.id}>
                    <th scope="row">{g.name}</th>
                    <td>
                      {a ? <><StateBadge state={a.decision} /> <span className="muted small">{a.source === 'rule' ? 'by a rule' : 'by hand'}, <RelativeTime iso={a.decidedAt} /></span></>
                        : <span className="muted">undecided</span>}
                    </td>
                    <td className="cell-actions">
                      <button type="button" className="button button--small" disabled={busy || a?.decision === 'approve'}
                        onClick={() => decide.mutate({ group: g.name, decision: 'approve' })}>
                        Approve<span className="visually-hidden"> for {g.name}</span>
                      </button>
                      <button type="button" className="button button--small" disabled={busy || a?.decision === 'decline'}
                        onClick={() => decide.mutate({ group: g.name, decision: 'decline' })}>
                        Decline<span className="visually-hidden"> for {g.name}</span>
                      </button>
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function PatchDevices({ patch, params }: { patch: string; params: URLSearchParams }) {
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);
  const query = useQuery({
    queryKey: ['patch-devices', patch, offset],
    queryFn: ({ signal }) =>
      apiGet<Page<{ id: string; hostname: string; state: PatchState }>>(
        withQuery('/catalog/patch/devices', { id: patch, state: 'needed', limit: PAGE_SIZE, offset }), { signal }),
    placeholderData: keepPreviousData,
    retry: false,
  });
  const onOffset = (next: number) => updateParams(patchPath(patch), params, { page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });
  const data = query.data;
  return (
    <section className="card card--flush" aria-labelledby="patch-devices-title" data-testid="patch-devices">
      <h2 id="patch-devices-title" className="card__title">Devices needing it</h2>
      {query.isPending ? <Loading label="Loading devices…" /> : !data ? (
        isMissingRoute(query.error)
          ? <p className="card__note muted">This server does not list devices per patch yet; see Reports.</p>
          : <ErrorNotice title="Could not load devices" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          <div className="table-wrap">
            <table className={`table table--compact${query.isPlaceholderData ? ' table--stale' : ''}`}>
              <caption className="visually-hidden">Devices needing {patch}</caption>
              <thead><tr><th scope="col">Device</th><th scope="col">State</th></tr></thead>
              <tbody>
                {data.items.map((d) => (
                  <tr key={d.id}>
                    <th scope="row"><a className="hostname" href={href(devicePath(d.id), { section: 'patches' })}>{d.hostname}</a></th>
                    <td><StateBadge state={d.state} /></td>
                  </tr>
                ))}
                {data.items.length === 0 ? (
                  <EmptyRow colSpan={2} offset={offset} total={data.total} noMatch="No device needs this patch." onFirstPage={() => onOffset(0)} />
                ) : null}
              </tbody>
            </table>
          </div>
          {data.total > PAGE_SIZE ? (
            <Pager label="Device pages" offset={offset} limit={PAGE_SIZE} count={data.items.length} total={data.total} onOffset={onOffset} />
          ) : null}
        </>
      )}
    </section>
  );
}

import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { apiGet, apiSend, withQuery } from '../api/client';
import { JOB_STATES, type Deployment, type JobSummary, type Page } from '../api/types';
import { Progress } from '../components/Card';
import { ConfirmDialog } from '../components/ConfirmDialog';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { formatDateTime, offsetFromPage, shortId } from '../components/format';
import { PageHeading } from '../components/PageHeading';
import { EmptyRow, Pager } from '../components/Pager';
import { RelativeTime } from '../components/RelativeTime';
import { StateBadge } from '../components/Severity';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { deploymentPath, deploymentsPath, devicePath, href, patchPath, updateParams, type ParamValues } from '../router';
import { JobEvents } from './deployment/JobEvents';

const PAGE_SIZE = 50;
const LIVE_MS = 5_000;

type Action = { kind: 'halt' } | { kind: 'resume' } | { kind: 'undo' } | { kind: 'undoRing'; ring: number; name: string };

export function DeploymentPage({ id, params }: { id: string; params: URLSearchParams }) {
  const queryClient = useQueryClient();
  const query = useQuery({
    queryKey: ['deployment', id],
    queryFn: ({ signal }) => apiGet<Deployment>(`/deployments/${encodeURIComponent(id)}`, { signal }),
    // live progress: poll while it runs (the event stream makes it sooner)
    refetchInterval: (q) => (q.state.data && (q.state.data.status === 'undone' || q.state.data.status === 'complete') ? 30_000 : LIVE_MS),
  });
  const d = query.data;
  useDocumentTitle(d ? `Deployment ${shortId(d.id)}` : 'Deployment');

  const [action, setAction] = useState<Action | null>(null);
  const [reason, setReason] = useState('');
  const [announce, setAnnounce] = useState('');
  const act = useMutation({
    mutationFn: (a: Action) => {
      const base = `/deployments/${encodeURIComponent(id)}`;
      switch (a.kind) {
        case 'halt': return apiSend<Deployment>('POST', `${base}/halt`, { json: reason.trim() ? { reason: reason.trim() } : {} });
        case 'resume': return apiSend<Deployment>('POST', `${base}/resume`);
        case 'undo': return apiSend<Deployment>('POST', `${base}/undo`);
        case 'undoRing': return apiSend<Deployment>('POST', `${base}/undo`, { json: { ring: a.ring } });
      }
    },
    onSuccess: (_r, a) => {
      setAction(null);
      setReason('');
      setAnnounce(a.kind === 'halt' ? 'Deployment halted.' : a.kind === 'resume' ? 'Deployment resumed.'
        : a.kind === 'undo' ? 'Undo started for the whole deployment.' : `Undo started for ring ${a.name}.`);
      void queryClient.invalidateQueries({ queryKey: ['deployment', id] });
      void queryClient.invalidateQueries({ queryKey: ['deployment-jobs', id] });
      void queryClient.invalidateQueries({ queryKey: ['deployments'] });
    },
  });
  const open = (a: Action) => {
    act.reset();
    setAction(a);
  };

  const running = d ? d.status !== 'halted' && d.status !== 'undone' && d.status !== 'complete' : false;
  const total = d ? d.rings.reduce((n, r) => n + r.counts.total, 0) : 0;
  const finished = d ? d.rings.reduce((n, r) => n + r.counts.total - r.counts.unfinished, 0) : 0;

  return (
    <>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <ol>
          <li><a href={href(deploymentsPath)}>Deployments</a></li>
          <li aria-current="page">{shortId(id)}</li>
        </ol>
      </nav>
      <div className="page-header">
        <PageHeading page={`deployment:${id}`}>Deployment <span className="mono">{shortId(id)}</span></PageHeading>
        {d ? <StateBadge state={d.status} /> : null}
        {d ? (
          <div className="page-header__actions">
            {d.status === 'halted'
              ? <button type="button" className="button" onClick={() => open({ kind: 'resume' })}>Resume</button>
              : running ? <button type="button" className="button" onClick={() => open({ kind: 'halt' })}>Halt</button> : null}
            {d.status !== 'undone' ? (
              <button type="button" className="button button--danger" onClick={() => open({ kind: 'undo' })}>Undo deployment</button>
            ) : null}
          </div>
        ) : null}
      </div>
      <p className="visually-hidden" aria-live="polite">{announce}</p>
      {query.isPending ? <Loading label="Loading deployment…" /> : !d ? (
        <ErrorNotice title="Could not load this deployment" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          {query.isError ? <ErrorNotice title="Could not refresh this deployment" error={query.error} onRetry={() => void query.refetch()} /> : null}
          {d.reason ? <p className={`notice ${d.status === 'halted' ? 'notice--error' : 'notice--info'}`}>{d.reason}</p> : null}
          <section className="card" aria-labelledby="dep-summary-title">
            <h2 id="dep-summary-title" className="card__title">Summary</h2>
            <dl className="facts">
              <div className="facts__row"><dt>Patches</dt><dd>{d.patches.map((p, i) => (
                <span key={p}>{i ? ', ' : ''}<a className="mono" href={href(patchPath(p))}>{p}</a></span>))}</dd></div>
              <div className="facts__row"><dt>Start</dt><dd>{formatDateTime(d.start)}</dd></div>
              <div className="facts__row"><dt>Deadline</dt><dd>{formatDateTime(d.deadline)}</dd></div>
              <div className="facts__row"><dt>Created</dt><dd><RelativeTime iso={d.createdAt} /></dd></div>
              <div className="facts__row"><dt>Current ring</dt><dd>{d.rings[d.currentRing]?.name ?? '—'}</dd></div>
              <div className="facts__row"><dt>Progress</dt><dd aria-live="polite" data-testid="deployment-progress">
                <Progress done={finished} total={total} label="Finished install jobs" /></dd></div>
              <div className="facts__row"><dt>Targets</dt><dd className="mono break">{targetText(d.target)}</dd></div>
              <div className="facts__row"><dt>Undo jobs</dt><dd>{Object.entries(d.jobs.undo).map(([s, n]) => `${n} ${s}`).join(', ') || 'none'}</dd></div>
            </dl>
          </section>
          <section className="card card--flush" aria-labelledby="rings-title" data-testid="deployment-rings">
            <h2 id="rings-title" className="card__title">Rings</h2>
            <div className="table-wrap">
              <table className="table">
                <caption className="visually-hidden">Rings and their status</caption>
                <thead>
                  <tr>
                    <th scope="col">Ring</th><th scope="col">Status</th><th scope="col" className="num">Devices</th>
                    <th scope="col" className="num">Succeeded</th><th scope="col" className="num">Failed</th><th scope="col" className="num">Unfinished</th>
                    <th scope="col">Bake ends</th><th scope="col"><span className="visually-hidden">Actions</span></th>
                  </tr>
                </thead>
                <tbody>
                  {d.rings.map((r, i) => (
                    <tr key={i} aria-current={i === d.currentRing && running ? 'step' : undefined}>
                      <th scope="row">{r.name}{i === d.currentRing && running ? <span className="cell-sub">current</span> : null}</th>
                      <td><StateBadge state={r.status} />{r.reason ? <span className="cell-sub">{r.reason}</span> : null}</td>
                      <td className="num">{r.counts.total}</td>
                      <td className="num">{r.counts.succeeded}</td>
                      <td className="num">{r.counts.failed > 0 ? <strong className="text-danger">{r.counts.failed}</strong> : 0}</td>
                      <td className="num">{r.counts.unfinished}</td>
                      <td className="nowrap">{r.bakeEndsAt ? formatDateTime(r.bakeEndsAt) : <span className="muted">—</span>}</td>
                      <td className="cell-actions">
                        {r.counts.succeeded > 0 ? (
                          <button type="button" className="button button--small" onClick={() => open({ kind: 'undoRing', ring: i, name: r.name })}>
                            Undo ring<span className="visually-hidden"> {r.name}</span>
                          </button>
                        ) : null}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </section>
          <Jobs id={id} params={params} rings={d.rings.map((r) => r.name)} />
        </>
      )}
      <ConfirmDialog open={action !== null} busy={act.isPending} danger={action?.kind !== 'resume'}
        title={action?.kind === 'halt' ? 'Halt this deployment?' : action?.kind === 'resume' ? 'Resume this deployment?'
          : action?.kind === 'undo' ? 'Undo the whole deployment?' : `Undo ring ${action?.kind === 'undoRing' ? action.name : ''}?`}
        confirmLabel={action?.kind === 'halt' ? 'Halt deployment' : action?.kind === 'resume' ? 'Resume deployment'
          : action?.kind === 'undo' ? 'Undo deployment' : 'Undo ring'}
        onCancel={() => setAction(null)} onConfirm={() => action && act.mutate(action)}>
        {action?.kind === 'halt' ? (
          <>
            <p>No new job is handed out until it is resumed. Jobs already running finish.</p>
            <label htmlFor="halt-reason" className="field__label">Reason (optional)</label>
            <input id="halt-reason" className="input" value={reason} maxLength={500} onChange={(e) => setReason(e.target.value)} />
          </>
        ) : action?.kind === 'resume' ? (
          <p>The current ring’s jobs go out again; later rings still wait for it to be healthy.</p>
        ) : action?.kind === 'undo' ? (
          <p>Installs stop, and every device where the install succeeded gets an undo job. This cannot be reversed.</p>
        ) : action?.kind === 'undoRing' ? (
          <p>Every device of ring <strong>{action.name}</strong> where the install succeeded gets an undo job.</p>
        ) : null}
        {act.isError ? <ErrorNotice title="The server refused" error={act.error} /> : null}
      </ConfirmDialog>
    </>
  );
}

function targetText(t: Record<string, unknown>): string {
  const list = (o: Record<string, unknown>, prefix = ''): string[] =>
    Object.entries(o).flatMap(([k, v]) => {
      if (Array.isArray(v)) return v.length ? [`${prefix}${k}: ${v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(', ')}`] : [];
      if (v && typeof v === 'object') return list(v as Record<string, unknown>, `${prefix}${k} `);
      return [];
    });
  return list(t).join('; ') || '—';
}

function Jobs({ id, params, rings }: { id: string; params: URLSearchParams; rings: string[] }) {
  const state = params.get('state') ?? '';
  const ringParam = params.get('ring');
  const ring = ringParam !== null && /^\d+$/.test(ringParam) ? Number(ringParam) : undefined;
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);
  const query = useQuery({
    queryKey: ['deployment-jobs', id, { state, ring, offset }],
    queryFn: ({ signal }) =>
      apiGet<Page<JobSummary>>(withQuery(`/deployments/${encodeURIComponent(id)}/jobs`, { state, ring, limit: PAGE_SIZE, offset }), { signal }),
    placeholderData: keepPreviousData,
    refetchInterval: LIVE_MS * 2,
  });
  const go = (changes: ParamValues) => updateParams(deploymentPath(id), params, changes);
  const onOffset = (next: number) => go({ page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });
  const data = query.data;
  return (
    <section className="card card--flush" aria-labelledby="jobs-title" data-testid="deployment-jobs">
      <div className="card__header">
        <h2 id="jobs-title" className="card__title">Jobs</h2>
        <div className="toolbar toolbar--tight">
          <div className="field">
            <label htmlFor="jobs-filter-state" className="field__label">State</label>
            <select id="jobs-filter-state" className="input" value={state} onChange={(e) => go({ state: e.target.value, page: null })}>
              <option value="">Any state</option>
              {JOB_STATES.map((s) => <option key={s} value={s}>{s}</option>)}
            </select>
          </div>
          <div className="field">
            <label htmlFor="jobs-filter-ring" className="field__label">Ring</label>
            <select id="jobs-filter-ring" className="input" value={ring === undefined ? '' : String(ring)} onChange={(e) => go({ ring: e.target.value, page: null })}>
              <option value="">Any ring</option>
              {rings.map((r, i) => <option key={i} value={i}>{r}</option>)}
            </select>
          </div>
        </div>
      </div>
      {query.isPending ? <Loading label="Loading jobs…" /> : !data ? (
        <ErrorNotice title="Could not load jobs" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          <div className="table-wrap">
            <table className={`table table--compact${query.isPlaceholderData ? ' table--stale' : ''}`}>
              <caption className="visually-hidden">Jobs of this deployment</caption>
              <thead>
                <tr>
                  <th scope="col">Device</th><th scope="col">Kind</th><th scope="col">Patch</th><th scope="col">Ring</th>
                  <th scope="col">State</th><th scope="col">Handed out</th><th scope="col">Finished</th><th scope="col"><span className="visually-hidden">Events</span></th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((j) => <JobRow key={j.id} job={j} ringName={rings[j.ring] ?? String(j.ring)} />)}
                {data.items.length === 0 ? (
                  <EmptyRow colSpan={8} offset={offset} total={data.total} noMatch={state || ring !== undefined ? 'No jobs match these filters.' : 'No jobs.'}
                    onFirstPage={() => onOffset(0)} />
                ) : null}
              </tbody>
            </table>
          </div>
          {data.total > 0 ? <Pager label="Job pages" offset={offset} limit={PAGE_SIZE} count={data.items.length} total={data.total} onOffset={onOffset} /> : null}
        </>
      )}
    </section>
  );
}

function JobRow({ job, ringName }: { job: JobSummary; ringName: string }) {
  const [open, setOpen] = useState(false);
  const panel = `job-${job.id}-events`;
  return (
    <>
      <tr>
        <th scope="row"><a className="hostname" href={href(devicePath(job.device.id), { section: 'history' })}>{job.device.hostname}</a></th>
        <td>{job.kind}</td>
        <td className="mono break">{job.patch.id}</td>
        <td>{ringName}</td>
        <td><StateBadge state={job.state} /></td>
        <td className="nowrap"><RelativeTime iso={job.handedAt} never="not yet" /></td>
        <td className="nowrap"><RelativeTime iso={job.finishedAt} never="—" /></td>
        <td>
          <button type="button" className="button button--small" aria-expanded={open} aria-controls={panel} onClick={() => setOpen((o) => !o)}>
            Events<span className="visually-hidden"> of {job.device.hostname} {job.patch.id}</span>
          </button>
        </td>
      </tr>
      {open ? <tr className="row-detail"><td colSpan={8} id={panel}><JobEvents jobId={job.id} /></td></tr> : null}
    </>
  );
}

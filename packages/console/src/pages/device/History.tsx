import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { apiGet, apiSend, withQuery } from '../../api/client';
import type { DeviceDetail, DeviceEvent, JobSummary, Page } from '../../api/types';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { formatDateTime, offsetFromPage, shortId } from '../../components/format';
import { EmptyRow, Pager } from '../../components/Pager';
import { RelativeTime } from '../../components/RelativeTime';
import { StateBadge } from '../../components/Severity';
import { deploymentPath, devicePath, href, patchPath, updateParams } from '../../router';
import { JobEvents } from '../deployment/JobEvents';

const PAGE_SIZE = 25;

/** The device's jobs (with Undo on a finished install) and its events. */
export function History({ device, routeId, params }: { device: DeviceDetail; routeId: string; params: URLSearchParams }) {
  const offset = offsetFromPage(params.get('jobsPage'), PAGE_SIZE);
  const queryClient = useQueryClient();
  const jobs = useQuery({
    queryKey: ['device-jobs', device.id, offset],
    queryFn: ({ signal }) => apiGet<Page<JobSummary>>(withQuery('/jobs', { device: device.id, limit: PAGE_SIZE, offset }), { signal }),
    placeholderData: keepPreviousData,
  });
  const events = useQuery({
    queryKey: ['device-events', device.id],
    queryFn: ({ signal }) => apiGet<Page<DeviceEvent>>(withQuery(`/devices/${encodeURIComponent(device.id)}/events`, { limit: 50 }), { signal }),
  });
  const [undoJob, setUndoJob] = useState<JobSummary | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const undo = useMutation({
    mutationFn: (job: JobSummary) =>
      apiSend<{ undoJobs?: number }>('POST', `/deployments/${encodeURIComponent(job.deploymentId)}/undo`, { json: { devices: [device.id] } }),
    onSuccess: (r, job) => {
      setUndoJob(null);
      setDone(`Undo requested for ${job.patch.id}${typeof r?.undoJobs === 'number' ? `: ${r.undoJobs} undo job(s) queued` : ''}.`);
      void queryClient.invalidateQueries({ queryKey: ['device-jobs', device.id] });
      void queryClient.invalidateQueries({ queryKey: ['deployment', job.deploymentId] });
    },
  });
  const onOffset = (next: number) =>
    updateParams(devicePath(routeId), params, { jobsPage: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });

  return (
    <section className="card card--flush" aria-labelledby="history-title" id="section-history" data-testid="device-history">
      <h2 id="history-title" className="card__title">History</h2>
      <p className="visually-hidden" aria-live="polite">{done ?? ''}</p>
      {done ? <p className="notice notice--info card__notice">{done}</p> : null}
      {undo.isError && !undoJob ? <ErrorNotice title="The server refused the undo" error={undo.error} /> : null}
      <h3 className="subhead card__subhead">Jobs</h3>
      {jobs.isPending ? (
        <Loading label="Loading jobs…" />
      ) : !jobs.data ? (
        <ErrorNotice title="Could not load jobs" error={jobs.error} onRetry={() => void jobs.refetch()} />
      ) : (
        <>
          <div className="table-wrap">
            <table className={`table table--compact${jobs.isPlaceholderData ? ' table--stale' : ''}`}>
              <caption className="visually-hidden">Jobs on {device.hostname}</caption>
              <thead>
                <tr>
                  <th scope="col">Job</th><th scope="col">Kind</th><th scope="col">Patch</th><th scope="col">Deployment</th>
                  <th scope="col">State</th><th scope="col">Finished</th><th scope="col"><span className="visually-hidden">Actions</span></th>
                </tr>
              </thead>
              <tbody>
                {jobs.data.items.map((j) => (
                  <JobRow key={j.id} job={j} onUndo={() => {
                    undo.reset();
                    setUndoJob(j);
                  }} />
                ))}
                {jobs.data.items.length === 0 ? (
                  <EmptyRow colSpan={7} offset={offset} total={jobs.data.total} noMatch="No jobs have run on this device."
                    onFirstPage={() => onOffset(0)} />
                ) : null}
              </tbody>
            </table>
          </div>
          {jobs.data.total > PAGE_SIZE ? (
            <Pager label="Job pages" offset={offset} limit={PAGE_SIZE} count={jobs.data.items.length} total={jobs.data.total} onOffset={onOffset} />
          ) : null}
        </>
      )}
      <h3 className="subhead card__subhead">Events</h3>
      {events.isPending ? (
        <Loading label="Loading events…" />
      ) : !events.data ? (
        <ErrorNotice title="Could not load events" error={events.error} onRetry={() => void events.refetch()} />
      ) : events.data.items.length === 0 ? (
        <p className="card__note muted">No events.</p>
      ) : (
        <ul className="events">
          {events.data.items.map((e, i) => (
            <li key={`${e.at}-${i}`}>
              <time dateTime={e.at} title={e.at}>{formatDateTime(e.at)}</time> <StateBadge state={e.kind} />{' '}
              {e.patch ? <a className="mono" href={href(patchPath(e.patch))}>{e.patch}</a> : null} <span>{e.message}</span>
            </li>
          ))}
        </ul>
      )}
      <ConfirmDialog open={undoJob !== null} title="Undo this install?" confirmLabel="Undo install" danger busy={undo.isPending}
        onCancel={() => setUndoJob(null)} onConfirm={() => undoJob && undo.mutate(undoJob)}>
        {undoJob ? (
          <>
            <p>An undo job will restore <strong>{device.hostname}</strong> to its state before{' '}
              <span className="mono">{undoJob.patch.id}</span> was installed (deployment <span className="mono">{shortId(undoJob.deploymentId)}</span>).</p>
            {undo.isError ? <ErrorNotice title="The server refused the undo" error={undo.error} /> : null}
          </>
        ) : null}
      </ConfirmDialog>
    </section>
  );
}

function JobRow({ job, onUndo }: { job: JobSummary; onUndo: () => void }) {
  const [open, setOpen] = useState(false);
  const panelId = `job-events-${job.id}`;
  return (
    <>
      <tr>
        <th scope="row" className="mono" title={job.id}>{shortId(job.id)}</th>
        <td>{job.kind}</td>
        <td className="mono break"><a href={href(patchPath(job.patch.id))}>{job.patch.id}</a></td>
        <td className="mono"><a href={href(deploymentPath(job.deploymentId))} title={job.deploymentId}>{shortId(job.deploymentId)}</a></td>
        <td><StateBadge state={job.state} /></td>
        <td className="nowrap"><RelativeTime iso={job.finishedAt} never="—" /></td>
        <td className="cell-actions">
          <button type="button" className="button button--small" aria-expanded={open} aria-controls={panelId} onClick={() => setOpen((o) => !o)}>
            Events<span className="visually-hidden"> of job {shortId(job.id)}</span>
          </button>
          {job.kind === 'install' && job.state === 'done' ? (
            <button type="button" className="button button--small" onClick={onUndo}>
              Undo<span className="visually-hidden"> {job.patch.id}</span>
            </button>
          ) : null}
        </td>
      </tr>
      {open ? (
        <tr className="row-detail"><td colSpan={7} id={panelId}><JobEvents jobId={job.id} /></td></tr>
      ) : null}
    </>
  );
}

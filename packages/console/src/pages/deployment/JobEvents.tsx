import { useQuery } from '@tanstack/react-query';
import { apiGet } from '../../api/client';
import type { JobDetail } from '../../api/types';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { formatDateTime } from '../../components/format';
import { StateBadge } from '../../components/Severity';

/** One job's event history (`GET /api/v1/jobs/:id`), shown in a disclosure. */
export function JobEvents({ jobId }: { jobId: string }) {
  const query = useQuery({
    queryKey: ['job', jobId],
    queryFn: ({ signal }) => apiGet<JobDetail>(`/jobs/${encodeURIComponent(jobId)}`, { signal }),
  });
  if (query.isPending) return <Loading label="Loading job events…" />;
  if (!query.data) return <ErrorNotice title="Could not load this job" error={query.error} />;
  const j = query.data;
  return (
    <div className="job-events" data-testid="job-events">
      {j.events.length === 0 ? <p className="muted">No events reported yet (state: {j.state}).</p> : (
        <ol className="events">
          {j.events.map((e, i) => (
            <li key={i}>
              <time dateTime={e.at} title={e.at}>{formatDateTime(e.at)}</time> <StateBadge state={e.state} />
              {e.message ? <span> {e.message}</span> : null}
            </li>
          ))}
        </ol>
      )}
      {j.detail ? (
        <details className="details">
          <summary>Agent report detail</summary>
          <pre className="pre">{JSON.stringify(j.detail, null, 2)}</pre>
        </details>
      ) : null}
    </div>
  );
}

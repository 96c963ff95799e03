import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { apiGet, withQuery } from '../api/client';
import type { DeploymentListItem, Page } from '../api/types';
import { Progress } from '../components/Card';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { formatDateTime, formatNumber, offsetFromPage, shortId } from '../components/format';
import { PageHeading } from '../components/PageHeading';
import { EmptyRow, Pager } from '../components/Pager';
import { RelativeTime } from '../components/RelativeTime';
import { StateBadge } from '../components/Severity';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { deploymentPath, deploymentsPath, href, newDeploymentPath, updateParams } from '../router';

const PAGE_SIZE = 25;
const REFRESH_MS = 15_000;

export function DeploymentsPage({ params }: { params: URLSearchParams }) {
  useDocumentTitle('Deployments');
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);
  const query = useQuery({
    queryKey: ['deployments', offset],
    queryFn: ({ signal }) => apiGet<Page<DeploymentListItem>>(withQuery('/deployments', { limit: PAGE_SIZE, offset }), { signal }),
    placeholderData: keepPreviousData,
    refetchInterval: REFRESH_MS,
  });
  const onOffset = (next: number) => updateParams(deploymentsPath, params, { page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });
  const data = query.data;
  return (
    <>
      <div className="page-header">
        <PageHeading page="deployments">Deployments</PageHeading>
        {data ? <p className="page-header__meta">{formatNumber(data.total)} in all</p> : null}
        <a className="button button--primary page-header__action" href={href(newDeploymentPath)}>New deployment</a>
      </div>
      {query.isPending ? <Loading label="Loading deployments…" /> : !data ? (
        <ErrorNotice title="Could not load deployments" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          {query.isError ? <ErrorNotice title="Could not refresh deployments" error={query.error} onRetry={() => void query.refetch()} /> : null}
          <div className="table-wrap">
            <table className={`table${query.isPlaceholderData ? ' table--stale' : ''}`}>
              <caption className="visually-hidden">Deployments, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Deployment</th><th scope="col">Status</th><th scope="col">Patches</th><th scope="col">Ring</th>
                  <th scope="col">Progress</th><th scope="col" className="num">Failed</th><th scope="col">Start</th><th scope="col">Deadline</th><th scope="col">Created</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((d) => (
                  <tr key={d.id}>
                    <th scope="row" className="mono cell-strong"><a href={href(deploymentPath(d.id))} title={d.id}>{shortId(d.id)}</a></th>
                    <td>
                      <StateBadge state={d.status} />
                      {d.reason ? <span className="cell-sub">{d.reason}</span> : null}
                    </td>
                    <td className="mono break">{d.patches.join(', ')}</td>
                    <td className="nowrap">{Math.min(d.currentRing + 1, d.rings)} of {d.rings}</td>
                    <td><Progress done={d.jobs.succeeded + d.jobs.failed} total={d.jobs.total} label={`Deployment ${shortId(d.id)} finished jobs`} /></td>
                    <td className="num">{d.jobs.failed > 0 ? <strong className="text-danger">{d.jobs.failed}</strong> : 0}</td>
                    <td className="nowrap">{formatDateTime(d.start)}</td>
                    <td className="nowrap">{formatDateTime(d.deadline)}</td>
                    <td className="nowrap"><RelativeTime iso={d.createdAt} /></td>
                  </tr>
                ))}
                {data.items.length === 0 ? (
                  <EmptyRow colSpan={9} offset={offset} total={data.total} noMatch="No deployments yet." onFirstPage={() => onOffset(0)} />
                ) : null}
              </tbody>
            </table>
          </div>
          {data.total > 0 ? <Pager label="Deployment pages" offset={offset} limit={PAGE_SIZE} count={data.items.length} total={data.total} onOffset={onOffset} /> : null}
        </>
      )}
    </>
  );
}

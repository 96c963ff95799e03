import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { apiGet, withQuery } from '../api/client';
import type { DeviceSort, DeviceSummary, Page, SortOrder } from '../api/types';
import { Labels, StatusBadge } from '../components/Badge';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { formatNumber, offsetFromPage, osLabel } from '../components/format';
import { PackageCount } from '../components/Inventory';
import { PageHeading } from '../components/PageHeading';
import { EmptyRow, Pager } from '../components/Pager';
import { RelativeTime } from '../components/RelativeTime';
import { SearchBox } from '../components/SearchBox';
import { SortHeader } from '../components/SortHeader';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { devicePath, devicesPath, href, updateParams, type ParamValues } from '../router';

const PAGE_SIZE = 50;
const REFRESH_MS = 10_000;

/** The order a column sorts in when first chosen: names A→Z, newest and largest first. */
const FIRST_ORDER: Record<DeviceSort, SortOrder> = { hostname: 'asc', os: 'asc', lastSeen: 'desc', packages: 'desc' };

function readSort(v: string | null): DeviceSort {
  return v === 'lastSeen' || v === 'packages' || v === 'os' ? v : 'hostname';
}

function readOrder(v: string | null, sort: DeviceSort): SortOrder {
  return v === 'asc' || v === 'desc' ? v : FIRST_ORDER[sort];
}

export function DevicesPage({ params }: { params: URLSearchParams }) {
  useDocumentTitle('Devices');
  const search = params.get('search') ?? '';
  const sort = readSort(params.get('sort'));
  const order = readOrder(params.get('order'), sort);
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);

  const query = useQuery({
    queryKey: ['devices', { search, sort, order, offset }],
    queryFn: ({ signal }) =>
      apiGet<Page<DeviceSummary>>(withQuery('/devices', { search, sort, order, limit: PAGE_SIZE, offset }), { signal }),
    placeholderData: keepPreviousData,
    refetchInterval: REFRESH_MS,
  });

  const go = (changes: ParamValues, replace = false) => updateParams(devicesPath, params, changes, replace);
  const onSort = (column: DeviceSort) =>
    go({ sort: column, order: column === sort ? (order === 'asc' ? 'desc' : 'asc') : FIRST_ORDER[column], page: null });
  const onOffset = (next: number) => go({ page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });

  const data = query.data;
  const header = { sort, order, onSort };
  const noDevices = data !== undefined && data.total === 0 && search === '' && offset === 0;

  return (
    <>
      <div className="page-header">
        <PageHeading page="devices">Devices</PageHeading>
        {data ? (
          <p className="page-header__meta">
            {formatNumber(data.total)} {search ? (data.total === 1 ? 'match' : 'matches') : 'enrolled'}
          </p>
        ) : null}
      </div>

      {noDevices ? null : (
        <div className="toolbar">
          <SearchBox id="device-search" label="Search devices" value={search}
            placeholder="Hostname, OS, group or label" onSearch={(v) => go({ search: v, page: null }, true)} />
        </div>
      )}

      {query.isPending ? (
        <Loading label="Loading devices…" />
      ) : !data ? (
        <ErrorNotice title="Could not load devices" error={query.error} onRetry={() => void query.refetch()} />
      ) : noDevices ? (
        <EmptyState />
      ) : (
        <>
          {query.isError ? (
            <ErrorNotice title="Could not refresh devices" error={query.error} onRetry={() => void query.refetch()} />
          ) : null}
          <div className="table-wrap" aria-busy={query.isPlaceholderData}>
            <table className={`table${query.isPlaceholderData ? ' table--stale' : ''}`}>
              <caption className="visually-hidden">Devices</caption>
              <thead>
                <tr>
                  <SortHeader column="hostname" label="Hostname" {...header} />
                  <SortHeader column="os" label="OS" {...header} />
                  <th scope="col">Group</th>
                  <th scope="col">Labels</th>
                  <SortHeader column="packages" label="Packages" className="num" {...header} />
                  <SortHeader column="lastSeen" label="Last seen" {...header} />
                  <th scope="col">Status</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((d) => (
                  <tr key={d.id}>
                    <th scope="row" className="cell-strong">
                      <a href={href(devicePath(d.id))} className="hostname" title={d.hostname}>{d.hostname}</a>
                    </th>
                    <td>{osLabel(d.os)}</td>
                    <td className="nowrap-wide">{d.group ? d.group.name : <span className="muted">—</span>}</td>
                    <td className="col-labels"><Labels labels={d.labels} /></td>
                    <td className="num nowrap-wide"><PackageCount device={d} /></td>
                    <td className="nowrap-wide"><RelativeTime iso={d.lastSeenAt} /></td>
                    <td><StatusBadge status={d.status} /></td>
                  </tr>
                ))}
                {data.items.length === 0 ? (
                  <EmptyRow colSpan={7} offset={offset} total={data.total} noMatch={`No devices match “${search}”.`}
                    onFirstPage={() => onOffset(0)} />
                ) : null}
              </tbody>
            </table>
          </div>
          {data.total > 0 ? (
            <Pager label="Devices pages" offset={offset} limit={PAGE_SIZE} count={data.items.length}
              total={data.total} onOffset={onOffset} />
          ) : null}
        </>
      )}
    </>
  );
}

function EmptyState() {
  return (
    <div className="empty">
      <p className="empty__title">
        No devices yet — enroll one with{' '}
        <code className="command">patchwarden agent enroll --server URL --secret S</code>
      </p>
      <p className="muted">Devices appear here after their first check-in.</p>
    </div>
  );
}

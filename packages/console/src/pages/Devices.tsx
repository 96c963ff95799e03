import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { ApiRequestError, apiGet, withQuery } from '../api/client';
import type { DeviceRow, DeviceSort, Group, Page, SortOrder } from '../api/types';
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
const FIRST_ORDER: Record<DeviceSort, SortOrder> = { hostname: 'asc', os: 'asc', lastSeen: 'desc', packages: 'desc', needed: 'desc' };

function readSort(v: string | null): DeviceSort {
  return v === 'lastSeen' || v === 'packages' || v === 'os' || v === 'needed' ? v : 'hostname';
}

function readOrder(v: string | null, sort: DeviceSort): SortOrder {
  return v === 'asc' || v === 'desc' ? v : FIRST_ORDER[sort];
}

export function DevicesPage({ params }: { params: URLSearchParams }) {
  useDocumentTitle('Devices');
  const search = params.get('search') ?? '';
  const os = params.get('os') ?? '';
  const group = params.get('group') ?? '';
  const label = params.get('label') ?? '';
  const filtered = search !== '' || os !== '' || group !== '' || label !== '';
  const sort = readSort(params.get('sort'));
  const order = readOrder(params.get('order'), sort);
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);

  const query = useQuery({
    queryKey: ['devices', { search, os, group, label, sort, order, offset }],
    queryFn: async ({ signal }): Promise<Page<DeviceRow> & { osViaSearch?: boolean }> => {
      const rest = { group, label, sort, order, limit: PAGE_SIZE, offset };
      try {
        return await apiGet<Page<DeviceRow>>(withQuery('/devices', { search, os, ...rest }), { signal });
      } catch (err) {
        // a server without the OS filter refuses the parameter: the search (which matches the OS name) stands in
        if (os && search === '' && err instanceof ApiRequestError && err.status === 400 && err.message.includes('"os"')) {
          const page = await apiGet<Page<DeviceRow>>(withQuery('/devices', { search: os, ...rest }), { signal });
          return { ...page, osViaSearch: true };
        }
        throw err;
      }
    },
    placeholderData: keepPreviousData,
    refetchInterval: REFRESH_MS,
  });

  const go = (changes: ParamValues, replace = false) => updateParams(devicesPath, params, changes, replace);
  const onSort = (column: DeviceSort) =>
    go({ sort: column, order: column === sort ? (order === 'asc' ? 'desc' : 'asc') : FIRST_ORDER[column], page: null });
  const onOffset = (next: number) => go({ page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });

  const data = query.data;
  const header = { sort, order, onSort };
  const noDevices = data !== undefined && data.total === 0 && !filtered && offset === 0;
  // the needed-patches column appears once the server counts them per device
  const hasNeeded = data?.items.some((d) => typeof d.needed === 'number') ?? false;
  const osUnsupported = os !== '' && query.error instanceof ApiRequestError && query.error.status === 400;

  return (
    <>
      <div className="page-header">
        <PageHeading page="devices">Devices</PageHeading>
        {data ? (
          <p className="page-header__meta">
            {formatNumber(data.total)} {filtered ? (data.total === 1 ? 'match' : 'matches') : 'enrolled'}
          </p>
        ) : null}
      </div>

      {noDevices ? null : (
        <div className="toolbar">
          <SearchBox id="device-search" label="Search devices" value={search}
            placeholder="Hostname, OS, group or label" onSearch={(v) => go({ search: v, page: null }, true)} />
          <DeviceFilters os={os} group={group} label={label} onChange={(changes) => go({ ...changes, page: null })} />
        </div>
      )}

      {query.isPending ? (
        <Loading label="Loading devices…" />
      ) : !data || osUnsupported ? (
        <>
          {osUnsupported ? (
            <p className="notice notice--info">This server cannot filter devices by OS together with a search. Clear one of them.</p>
          ) : null}
          <ErrorNotice title="Could not load devices" error={query.error} onRetry={() => void query.refetch()} />
        </>
      ) : noDevices ? (
        <EmptyState />
      ) : (
        <>
          {data.osViaSearch ? (
            <p className="notice notice--info">This server cannot filter by OS: showing devices whose hostname, OS, group or label
              contains “{os}”.</p>
          ) : null}
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
                  {hasNeeded ? <SortHeader column="needed" label="Needed patches" className="num" {...header} /> : null}
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
                    {hasNeeded ? (
                      <td className="num">
                        {typeof d.needed === 'number'
                          ? <a href={href(devicePath(d.id), { section: 'patches' })}>{formatNumber(d.needed)}</a>
                          : <span className="muted" title="Not assessed">—</span>}
                      </td>
                    ) : null}
                    <td className="nowrap-wide"><RelativeTime iso={d.lastSeenAt} /></td>
                    <td><StatusBadge status={d.status} /></td>
                  </tr>
                ))}
                {data.items.length === 0 ? (
                  <EmptyRow colSpan={hasNeeded ? 8 : 7} offset={offset} total={data.total}
                    noMatch={search ? `No devices match “${search}”.` : 'No devices match these filters.'}
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

type FilterProps = { os: string; group: string; label: string; onChange: (changes: ParamValues) => void };

/** OS (text), group (from GET /groups) and label filters; each change goes to the URL. */
function DeviceFilters({ os, group, label, onChange }: FilterProps) {
  const groups = useQuery({
    queryKey: ['groups'],
    queryFn: ({ signal }) => apiGet<{ items: Group[] }>('/groups', { signal }),
    staleTime: 60_000,
  });
  return (
    <>
      <div className="field field--inline-toolbar">
        <label htmlFor="device-filter-group" className="field__label">Group</label>
        <select id="device-filter-group" className="input" value={group} onChange={(e) => onChange({ group: e.target.value })}>
          <option value="">Any group</option>
          {(groups.data?.items ?? []).map((g) => <option key={g.id} value={g.name}>{g.name}</option>)}
          {group && !groups.data?.items.some((g) => g.name === group) ? <option value={group}>{group}</option> : null}
        </select>
      </div>
      <SearchBox id="device-filter-os" label="OS" value={os} placeholder="e.g. Debian 12" onSearch={(v) => onChange({ os: v })} />
      <SearchBox id="device-filter-label" label="Label" value={label} placeholder="e.g. env=prod" onSearch={(v) => onChange({ label: v })} />
      {os || group || label ? (
        <button type="button" className="button button--small" onClick={() => onChange({ os: null, group: null, label: null })}>
          Clear filters
        </button>
      ) : null}
    </>
  );
}

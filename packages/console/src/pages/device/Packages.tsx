import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { apiGet, withQuery } from '../../api/client';
import type { DeviceDetail, PackageFact, Page } from '../../api/types';
import { Badge } from '../../components/Badge';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { offsetFromPage } from '../../components/format';
import { EmptyRow, Pager } from '../../components/Pager';
import { SearchBox } from '../../components/SearchBox';
import { devicePath, updateParams, type ParamValues } from '../../router';

const PAGE_SIZE = 100;

type Props = {
  device: DeviceDetail;
  /** The device as the URL names it (its id, or a hostname: the server accepts both). */
  routeId: string;
  params: URLSearchParams;
};

/** The device's package inventory, searchable, a hundred rows a page. */
export function Packages({ device, routeId, params }: Props) {
  const search = params.get('search') ?? '';
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);
  const id = device.id;

  const query = useQuery({
    queryKey: ['device-packages', id, { search, offset }],
    queryFn: ({ signal }) =>
      apiGet<Page<PackageFact>>(
        withQuery(`/devices/${encodeURIComponent(id)}/packages`, { search, limit: PAGE_SIZE, offset }), { signal }),
    placeholderData: keepPreviousData,
  });

  const go = (changes: ParamValues, replace = false) => updateParams(devicePath(routeId), params, changes, replace);
  const onOffset = (next: number) => go({ page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });
  const data = query.data;
  const inventory = device.inventory;
  // Without an inventory there is nothing to search (unless a search is already in the URL).
  const noInventory = inventory.status !== 'ok' && inventory.status !== 'error' && search === '' && data?.total === 0;

  return (
    <section className="card card--flush" aria-labelledby="packages-title" id="section-packages">
      <div className="card__header">
        <h2 id="packages-title" className="card__title">Packages</h2>
        {noInventory ? null : (
          <SearchBox id="package-search" label="Search packages" value={search} placeholder="Name or source" inline
            onSearch={(v) => go({ search: v, page: null }, true)} />
        )}
      </div>

      {inventory.status !== 'ok' && inventory.status !== 'none' ? (
        <p className="card__note">
          {inventory.status === 'unsupported' ? 'Package inventory is not supported on this device.'
            : inventory.status === 'error' ? 'The last package inventory failed.'
              : 'No supported package manager was found on this device.'}
          {inventory.message ? <> <span className="muted">{inventory.message}</span></> : null}
        </p>
      ) : null}

      {query.isPending ? (
        <Loading label="Loading packages…" />
      ) : !data ? (
        <ErrorNotice title="Could not load packages" error={query.error} onRetry={() => void query.refetch()} />
      ) : data.total === 0 && search === '' && offset === 0 ? (
        inventory.status === 'none' ? <p className="card__note muted">The agent has not sent a package inventory yet.</p>
          : inventory.status === 'ok' ? <p className="card__note muted">No packages reported.</p> : null
      ) : (
        <>
          {query.isError ? (
            <ErrorNotice title="Could not refresh packages" error={query.error} onRetry={() => void query.refetch()} />
          ) : null}
          <div className="table-wrap" aria-busy={query.isPlaceholderData}>
            <table className={`table${query.isPlaceholderData ? ' table--stale' : ''}`}>
              <caption className="visually-hidden">Packages installed on {device.hostname}</caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Version</th>
                  <th scope="col">Arch</th>
                  <th scope="col">Source</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              <tbody>
                {data.items.map((p) => (
                  <tr key={`${p.manager}:${p.name}:${p.arch}`}>
                    <th scope="row" className="mono cell-strong">{p.name}</th>
                    <td className="mono break">{p.version}</td>
                    <td className="mono">{p.arch}</td>
                    <td className="mono break">{sourceLabel(p)}</td>
                    <td>{p.state === 'installed' ? p.state : <Badge tone="warn">{p.state}</Badge>}</td>
                  </tr>
                ))}
                {data.items.length === 0 ? (
                  <EmptyRow colSpan={5} offset={offset} total={data.total} noMatch={`No packages match “${search}”.`}
                    onFirstPage={() => onOffset(0)} />
                ) : null}
              </tbody>
            </table>
          </div>
          {data.total > 0 ? (
            <Pager label="Package pages" offset={offset} limit={PAGE_SIZE} count={data.items.length}
              total={data.total} onOffset={onOffset} />
          ) : null}
        </>
      )}
    </section>
  );
}

function sourceLabel(p: PackageFact) {
  if (!p.source && !p.sourceVersion) return <span className="muted">—</span>;
  return [p.source, p.sourceVersion].filter(Boolean).join(' ');
}

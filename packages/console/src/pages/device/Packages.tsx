import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { apiGet, withQuery } from '../../api/client';
import type { DeviceDetail, PackageFact, Page } from '../../api/types';
import { Badge } from '../../components/Badge';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { offsetFromPage } from '../../components/format';
import { Pager } from '../../components/Pager';
import { SearchBox } from '../../components/SearchBox';
import { devicePath, updateParams, type ParamValues } from '../../router';

const PAGE_SIZE = 100;

/** The device's package inventory, searchable, a hundred rows a page. */
export function Packages({ device, params }: { device: DeviceDetail; params: URLSearchParams }) {
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

  const go = (changes: ParamValues, replace = false) => updateParams(devicePath(id), params, changes, replace);
  const onOffset = (next: number) => go({ page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });
  const data = query.data;
  const inventory = device.inventory;

  return (
    <section className="card card--flush" aria-labelledby="packages-title">
      <div className="card__header">
        <h2 id="packages-title" className="card__title">Packages</h2>
        <SearchBox id="package-search" label="Search packages" value={search} placeholder="Name or source"
          onSearch={(v) => go({ search: v, page: null }, true)} />
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
        <p className="card__note muted">
          {inventory.status === 'none' ? 'The agent has not sent a package inventory yet.' : 'No packages reported.'}
        </p>
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
                  <tr>
                    <td colSpan={5} className="table__empty">
                      {offset > 0 && data.total > 0 ? (
                        <>
                          Nothing on this page.{' '}
                          <button type="button" className="link-button" onClick={() => onOffset(0)}>Go to the first page</button>
                        </>
                      ) : (
                        <>No packages match “{search}”.</>
                      )}
                    </td>
                  </tr>
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

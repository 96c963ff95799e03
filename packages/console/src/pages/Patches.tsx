import { keepPreviousData, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useRef, useState, type FormEvent } from 'react';
import { apiGet, apiSend, withQuery } from '../api/client';
import type { CatalogPatch, Page, SortOrder } from '../api/types';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { formatNumber, offsetFromPage } from '../components/format';
import { PageHeading } from '../components/PageHeading';
import { EmptyRow, Pager } from '../components/Pager';
import { SearchBox } from '../components/SearchBox';
import { SeverityBadge } from '../components/Severity';
import { SortHeader } from '../components/SortHeader';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { href, patchesPath, patchPath, updateParams, type ParamValues } from '../router';

const PAGE_SIZE = 50;
type PatchSort = 'id' | 'severity' | 'releaseDate' | 'devices';
const FIRST_ORDER: Record<PatchSort, SortOrder> = { id: 'asc', severity: 'desc', releaseDate: 'desc', devices: 'desc' };
const SEVERITY_FILTERS = ['critical', 'high', 'medium', 'low', 'none', 'unknown'];

function readSort(v: string | null): PatchSort {
  return v === 'severity' || v === 'releaseDate' || v === 'devices' ? v : 'id';
}

export function PatchesPage({ params }: { params: URLSearchParams }) {
  useDocumentTitle('Patches');
  const search = params.get('search') ?? '';
  const severity = params.get('severity') ?? '';
  const vendor = params.get('vendor') ?? '';
  const cve = params.get('cve') ?? '';
  const source = params.get('source') ?? '';
  const platform = params.get('platform') ?? '';
  const needed = params.get('state') === 'needed';
  const sort = readSort(params.get('sort'));
  const o = params.get('order');
  const order: SortOrder = o === 'asc' || o === 'desc' ? o : FIRST_ORDER[sort];
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);
  const filtered = search !== '' || severity !== '' || vendor !== '' || cve !== '' || source !== '' || platform !== '' || needed;

  const query = useQuery({
    queryKey: ['catalog', 'patches', { search, severity, vendor, cve, source, platform, needed, sort, order, offset }],
    queryFn: ({ signal }) =>
      apiGet<Page<CatalogPatch>>(withQuery('/catalog/patches', {
        search, severity, vendor, cve, source, platform, state: needed ? 'needed' : undefined, sort, order, limit: PAGE_SIZE, offset,
      }), { signal }),
    placeholderData: keepPreviousData,
  });
  const go = (changes: ParamValues, replace = false) => updateParams(patchesPath, params, changes, replace);
  const onSort = (column: PatchSort) =>
    go({ sort: column, order: column === sort ? (order === 'asc' ? 'desc' : 'asc') : FIRST_ORDER[column], page: null });
  const onOffset = (next: number) => go({ page: next > 0 ? Math.floor(next / PAGE_SIZE) + 1 : null });
  const data = query.data;
  const hasDevices = data?.items.some((p) => typeof p.devices === 'number') ?? false;
  const header = { sort, order, onSort };

  return (
    <>
      <div className="page-header">
        <PageHeading page="patches">Patches</PageHeading>
        {data ? <p className="page-header__meta" aria-live="polite">{formatNumber(data.total)} {filtered ? 'matching' : 'in the catalog'}</p> : null}
      </div>
      <div className="toolbar">
        <SearchBox id="patch-search" label="Search patches" value={search} placeholder="Patch id" onSearch={(v) => go({ search: v, page: null }, true)} />
        <div className="field">
          <label htmlFor="patch-filter-severity" className="field__label">Severity</label>
          <select id="patch-filter-severity" className="input" value={severity} onChange={(e) => go({ severity: e.target.value, page: null })}>
            <option value="">Any severity</option>
            {SEVERITY_FILTERS.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </div>
        <SearchBox id="patch-filter-vendor" label="Vendor" value={vendor} placeholder="e.g. debian" onSearch={(v) => go({ vendor: v, page: null }, true)} />
        <SearchBox id="patch-filter-cve" label="CVE" value={cve} placeholder="CVE-2024-1234" onSearch={(v) => go({ cve: v, page: null }, true)} />
        <SearchBox id="patch-filter-source" label="Source" value={source} placeholder="apt, osv, custom…" onSearch={(v) => go({ source: v, page: null }, true)} />
        <SearchBox id="patch-filter-platform" label="Platform" value={platform} placeholder="debian, bookworm, 22.04…" onSearch={(v) => go({ platform: v, page: null }, true)} />
        <div className="field field--check">
          <input id="patch-filter-needed" type="checkbox" checked={needed} onChange={(e) => go({ state: e.target.checked ? 'needed' : null, page: null })} />
          <label htmlFor="patch-filter-needed">Needed by at least one device</label>
        </div>
        {filtered ? (
          <button type="button" className="button button--small"
            onClick={() => go({ search: null, severity: null, vendor: null, cve: null, source: null, platform: null, state: null, page: null })}>Clear filters</button>
        ) : null}
      </div>
      {query.isPending ? (
        <Loading label="Loading patches…" />
      ) : !data ? (
        <ErrorNotice title="Could not load patches" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          {query.isError ? <ErrorNotice title="Could not refresh patches" error={query.error} onRetry={() => void query.refetch()} /> : null}
          <div className="table-wrap" aria-busy={query.isPlaceholderData}>
            <table className={`table${query.isPlaceholderData ? ' table--stale' : ''}`}>
              <caption className="visually-hidden">Patches</caption>
              <thead>
                <tr>
                  <SortHeader column="id" label="Patch" {...header} />
                  <th scope="col">Title</th>
                  <SortHeader column="severity" label="Severity" {...header} />
                  <SortHeader column="releaseDate" label="Released" {...header} />
                  <th scope="col">Source</th>
                  {hasDevices ? <SortHeader column="devices" label="Devices needing" className="num" {...header} /> : null}
                </tr>
              </thead>
              <tbody>
                {data.items.map((p) => (
                  <tr key={p.id}>
                    <th scope="row" className="mono cell-strong break"><a href={href(patchPath(p.id))}>{p.id}</a></th>
                    <td className="break">{p.title}</td>
                    <td><SeverityBadge severity={p.severity} /></td>
                    <td className="nowrap">{p.releaseDate ?? <span className="muted">—</span>}</td>
                    <td>{p.source ?? <span className="muted">—</span>}</td>
                    {hasDevices ? <td className="num">{formatNumber(p.devices ?? 0)}</td> : null}
                  </tr>
                ))}
                {data.items.length === 0 ? (
                  <EmptyRow colSpan={hasDevices ? 6 : 5} offset={offset} total={data.total}
                    noMatch={filtered ? 'No patches match these filters.' : 'The catalog is empty.'} onFirstPage={() => onOffset(0)} />
                ) : null}
              </tbody>
            </table>
          </div>
          {data.total > 0 ? (
            <Pager label="Patch pages" offset={offset} limit={PAGE_SIZE} count={data.items.length} total={data.total} onOffset={onOffset} />
          ) : null}
        </>
      )}
      <UploadBundle />
    </>
  );
}

type UploadAnswer = { id?: string; revision?: number; patch?: { id: string; revision: number } } & Record<string, unknown>;

/** Upload of a signed custom patch bundle; it is listed only once an author signs the next listing. */
function UploadBundle() {
  const queryClient = useQueryClient();
  const fileRef = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const upload = useMutation({
    mutationFn: (f: File) => apiSend<UploadAnswer>('POST', '/catalog/bundles', { binary: f, type: 'application/octet-stream' }),
    onSuccess: () => {
      void queryClient.invalidateQueries({ queryKey: ['catalog'] });
      setFile(null);
      if (fileRef.current) fileRef.current.value = '';
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (file) upload.mutate(file);
  };
  const r = upload.data;
  const uploadedId = r?.patch?.id ?? r?.id;
  return (
    <section className="card upload" aria-labelledby="upload-title" data-testid="bundle-upload">
      <h2 id="upload-title" className="card__title">Upload a custom patch bundle</h2>
      <form onSubmit={submit} className="form-row">
        <div className="field">
          <label htmlFor="bundle-file" className="field__label">Signed bundle file</label>
          <input ref={fileRef} id="bundle-file" type="file" className="input" aria-describedby="bundle-help"
            onChange={(e) => setFile(e.target.files?.[0] ?? null)} />
        </div>
        <button type="submit" className="button button--primary" disabled={!file || upload.isPending}>
          {upload.isPending ? 'Uploading…' : 'Upload bundle'}
        </button>
      </form>
      <p id="bundle-help" className="field__help">
        A bundle made with <code>patchwarden patch sign</code>. The server checks its signature against the catalog’s authors.
      </p>
      <div aria-live="polite">
        {upload.isSuccess ? (
          <div className="notice notice--info" role="status">
            <p className="notice__title">Bundle uploaded{uploadedId ? <>: <span className="mono">{uploadedId}</span></> : null}.</p>
            <p>It is stored but not yet listed: devices see it once an author signs the next custom listing. On the author’s machine run</p>
            <p><code className="command">patchwarden patch publish --key AUTHOR.key BUNDLE-FILE</code></p>
          </div>
        ) : null}
      </div>
      {upload.isError ? <ErrorNotice title="The bundle was refused" error={upload.error} /> : null}
    </section>
  );
}

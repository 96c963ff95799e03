import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { apiDownload, apiGet, withQuery } from '../api/client';
import type { NeededReport, OpenCveReport } from '../api/types';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { formatNumber, offsetFromPage } from '../components/format';
import { PageHeading } from '../components/PageHeading';
import { SeverityBadge } from '../components/Severity';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { devicePath, href, patchesPath, patchPath, reportsPath, updateParams } from '../router';
import { EmptyRow, Pager } from '../components/Pager';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'none', 'unknown'];
const PAGE_SIZE = 50;
/** patches listed per CVE row; the rest are counted */
const PATCHES_SHOWN = 12;

type ReportBy = 'device' | 'patch' | 'cve';

function readBy(v: string | null): ReportBy {
  return v === 'patch' || v === 'cve' ? v : 'device';
}

export function ReportsPage({ params }: { params: URLSearchParams }) {
  useDocumentTitle('Reports');
  const by = readBy(params.get('by'));
  const severity = params.get('severity') ?? '';
  const offset = offsetFromPage(params.get('page'), PAGE_SIZE);
  const onOffset = (next: number) => updateParams(reportsPath, params, { page: next > 0 ? String(Math.floor(next / PAGE_SIZE) + 1) : null });
  return (
    <>
      <div className="page-header">
        <PageHeading page="reports">Reports</PageHeading>
      </div>
      <h2 className="section-title">{by === 'cve' ? 'Open CVEs' : 'Needed patches'}</h2>
      <div className="toolbar">
        <div className="segmented" role="group" aria-label="Group the report">
          <button type="button" className="button button--small" aria-pressed={by === 'device'} onClick={() => updateParams(reportsPath, params, { by: null, page: null })}>
            By device
          </button>
          <button type="button" className="button button--small" aria-pressed={by === 'patch'} onClick={() => updateParams(reportsPath, params, { by: 'patch', page: null })}>
            By patch
          </button>
          <button type="button" className="button button--small" aria-pressed={by === 'cve'} onClick={() => updateParams(reportsPath, params, { by: 'cve', page: null })}>
            Open CVEs
          </button>
        </div>
        <div className="field">
          <label htmlFor="report-severity" className="field__label">Severity</label>
          <select id="report-severity" className="input" value={severity} onChange={(e) => updateParams(reportsPath, params, { severity: e.target.value, page: null })}>
            <option value="">Any severity</option>
            {SEVERITIES.map((s) => <option key={s} value={s}>{s}</option>)}
          </select>
        </div>
        <Download by={by} severity={severity} />
      </div>
      {by === 'cve' ? (
        <CveReportView severity={severity} offset={offset} onOffset={onOffset} />
      ) : (
        <NeededReportView by={by} severity={severity} offset={offset} onOffset={onOffset} />
      )}
    </>
  );
}

type ViewProps = { severity: string; offset: number; onOffset: (offset: number) => void };

function NeededReportView({ by, severity, offset, onOffset }: ViewProps & { by: 'device' | 'patch' }) {
  // one page at a time, and at most a dozen hostnames per patch: a fleet of 10,000 stays fast
  const query = useQuery({
    queryKey: ['reports', 'needed', by, severity, offset],
    queryFn: ({ signal }) => apiGet<NeededReport>(withQuery('/reports/needed', { by, severity, limit: PAGE_SIZE, offset, devicesPerPatch: 12 }), { signal }),
  });
  const data = query.data;
  const notAssessed = data ? (data.notAssessedTotal ?? data.notAssessed.length) : 0;
  return (
    <>
      {query.isPending ? <Loading label="Loading the report…" /> : !data ? (
        <ErrorNotice title="Could not load the report" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          {notAssessed ? (
            <p className="notice notice--info" data-testid="report-not-assessed">
              {formatNumber(notAssessed)} device{notAssessed === 1 ? ' is' : 's are'} not assessed (no feed covers their OS)
              and {notAssessed === 1 ? 'is' : 'are'} not in this report:{' '}
              {data.notAssessed.slice(0, 20).map((d, i) => (
                <span key={d.id}>{i ? ', ' : ''}<a href={href(devicePath(d.id))}>{d.hostname}</a></span>
              ))}
              {notAssessed > 20 ? ` and ${formatNumber(notAssessed - 20)} more` : ''}.
            </p>
          ) : null}
          {data.by === 'device' ? (
            <div className="table-wrap">
              <table className="table" data-testid="report-by-device">
                <caption className="visually-hidden">Needed patches by device</caption>
                <thead><tr><th scope="col">Device</th><th scope="col" className="num">Needed</th><th scope="col">Patches</th></tr></thead>
                <tbody>
                  {data.items.map((r) => (
                    <tr key={r.device.id}>
                      <th scope="row" className="cell-strong"><a className="hostname" href={href(devicePath(r.device.id), { section: 'patches' })}>{r.device.hostname}</a></th>
                      <td className="num">{formatNumber(r.needed.length)}</td>
                      <td>
                        <ul className="inline-list">
                          {r.needed.slice(0, 12).map((p) => (
                            <li key={p.patch}><a className="mono" href={href(patchPath(p.patch))} title={p.title}>{p.patch}</a> <SeverityBadge severity={p.severity} /></li>
                          ))}
                          {r.needed.length > 12 ? <li className="muted">and {r.needed.length - 12} more</li> : null}
                        </ul>
                      </td>
                    </tr>
                  ))}
                  {data.items.length === 0 ? <tr><td colSpan={3} className="table__empty">No assessed device needs a patch.</td></tr> : null}
                </tbody>
              </table>
            </div>
          ) : (
            <div className="table-wrap">
              <table className="table" data-testid="report-by-patch">
                <caption className="visually-hidden">Needed patches by patch</caption>
                <thead><tr><th scope="col">Patch</th><th scope="col">Severity</th><th scope="col" className="num">Devices</th><th scope="col">Devices needing it</th></tr></thead>
                <tbody>
                  {data.items.map((r) => (
                    <tr key={r.patch.id}>
                      <th scope="row"><a className="mono cell-strong" href={href(patchPath(r.patch.id))}>{r.patch.id}</a><span className="cell-sub">{r.patch.title}</span></th>
                      <td><SeverityBadge severity={r.patch.severity} /></td>
                      <td className="num">{formatNumber(r.deviceCount ?? r.devices.length)}</td>
                      <td>
                        <ul className="inline-list">
                          {r.devices.slice(0, 12).map((d) => <li key={d.id}><a href={href(devicePath(d.id))}>{d.hostname}</a></li>)}
                          {(r.deviceCount ?? r.devices.length) > 12 ? <li className="muted">and {formatNumber((r.deviceCount ?? r.devices.length) - 12)} more</li> : null}
                        </ul>
                      </td>
                    </tr>
                  ))}
                  {data.items.length === 0 ? <tr><td colSpan={4} className="table__empty">No patch is needed.</td></tr> : null}
                </tbody>
              </table>
            </div>
          )}
          <Pager label="Report pages" offset={offset} limit={PAGE_SIZE} count={data.items.length} total={data.total ?? data.items.length} onOffset={onOffset} />
        </>
      )}
    </>
  );
}

/** CVEs of the patches active devices need: exploited first, then by severity and devices. */
function CveReportView({ severity, offset, onOffset }: ViewProps) {
  const query = useQuery({
    queryKey: ['reports', 'cves', severity, offset],
    queryFn: ({ signal }) => apiGet<OpenCveReport>(withQuery('/reports/cves', { severity, limit: PAGE_SIZE, offset }), { signal }),
  });
  const data = query.data;
  if (query.isPending) return <Loading label="Loading the report…" />;
  if (!data) return <ErrorNotice title="Could not load the report" error={query.error} onRetry={() => void query.refetch()} />;
  return (
    <>
      <div className="table-wrap">
        <table className="table" data-testid="report-by-cve">
          <caption className="visually-hidden">Open CVEs: CVEs fixed by patches that active devices need, exploited first</caption>
          <thead>
            <tr><th scope="col">CVE</th><th scope="col">Severity</th><th scope="col">Patches</th><th scope="col" className="num">Devices</th></tr>
          </thead>
          <tbody>
            {data.items.map((r) => (
              <tr key={r.cve}>
                <th scope="row" className="nowrap">
                  <a className="mono cell-strong" href={href(patchesPath, { cve: r.cve })} title={`Patches that fix ${r.cve}`}>{r.cve}</a>
                  {r.exploited ? <> <span className="badge badge--critical">exploited</span></> : null}
                </th>
                <td><SeverityBadge severity={r.severity} /></td>
                <td>
                  <ul className="inline-list">
                    {r.patches.slice(0, PATCHES_SHOWN).map((p) => (
                      <li key={p.id}><a className="mono" href={href(patchPath(p.id))} title={p.title}>{p.id}</a></li>
                    ))}
                    {r.patches.length > PATCHES_SHOWN ? <li className="muted">and {formatNumber(r.patches.length - PATCHES_SHOWN)} more</li> : null}
                  </ul>
                </td>
                <td className="num">{formatNumber(r.devices)}</td>
              </tr>
            ))}
            {data.items.length === 0 ? (
              <EmptyRow colSpan={4} offset={offset} total={data.total} noMatch="No open CVE: no needed patch names a CVE." onFirstPage={() => onOffset(0)} />
            ) : null}
          </tbody>
        </table>
      </div>
      <Pager label="Report pages" offset={offset} limit={PAGE_SIZE} count={data.items.length} total={data.total} onOffset={onOffset} />
    </>
  );
}

/** CSV and PDF downloads: fetched with the token header, saved through an object URL. */
function Download({ by, severity }: { by: ReportBy; severity: string }) {
  const [busy, setBusy] = useState<'csv' | 'pdf' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState('');
  const get = async (format: 'csv' | 'pdf') => {
    setBusy(format);
    setError(null);
    setDone('');
    const day = new Date().toISOString().slice(0, 10);
    const name = by === 'cve'
      ? `patchwarden-open-cves${severity ? `-${severity}` : ''}-${day}.${format}`
      : `patchwarden-needed-by-${by}${severity ? `-${severity}` : ''}-${day}.${format}`;
    const path = by === 'cve' ? withQuery(`/reports/cves.${format}`, { severity }) : withQuery(`/reports/needed.${format}`, { by, severity });
    try {
      await apiDownload(path, name);
      setDone(`Downloaded ${name}.`);
    } catch (e) {
      setError(e);
    } finally {
      setBusy(null);
    }
  };
  return (
    <div className="downloads">
      <button type="button" className="button button--small" disabled={busy !== null} onClick={() => void get('csv')}>
        {busy === 'csv' ? 'Preparing CSV…' : 'Download CSV'}
      </button>
      {by === 'cve' ? null : (
        <button type="button" className="button button--small" disabled={busy !== null} onClick={() => void get('pdf')}>
          {busy === 'pdf' ? 'Preparing PDF…' : 'Download PDF'}
        </button>
      )}
      <span className="visually-hidden" aria-live="polite">{done}</span>
      {error ? <ErrorNotice title="The download failed" error={error} /> : null}
    </div>
  );
}

import { useQuery } from '@tanstack/react-query';
import { lazy, Suspense } from 'react';
import { apiGet } from '../api/client';
import type { Dashboard } from '../api/types';
import { Card, Progress } from '../components/Card';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { formatNumber, shortId } from '../components/format';
import { PageHeading } from '../components/PageHeading';
import { RelativeTime } from '../components/RelativeTime';
import { SeverityBadge, StateBadge } from '../components/Severity';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { deploymentPath, deploymentsPath, devicePath, href, patchesPath, patchPath } from '../router';

const TrendChart = lazy(() => import('./dashboard/Charts').then((m) => ({ default: m.TrendChart })));
const SlaChart = lazy(() => import('./dashboard/Charts').then((m) => ({ default: m.SlaChart })));

const REFRESH_MS = 30_000;
const SEVERITIES = ['critical', 'high', 'medium', 'low', 'unknown'] as const;

export function DashboardPage() {
  useDocumentTitle('Dashboard');
  const query = useQuery({
    queryKey: ['dashboard'],
    queryFn: ({ signal }) => apiGet<Dashboard>('/dashboard', { signal }),
    refetchInterval: REFRESH_MS,
  });
  const data = query.data;

  return (
    <>
      <div className="page-header">
        <PageHeading page="dashboard">Dashboard</PageHeading>
      </div>
      {query.isPending ? (
        <Loading label="Loading the dashboard…" />
      ) : !data ? (
        <ErrorNotice title="Could not load the dashboard" error={query.error} onRetry={() => void query.refetch()} />
      ) : (
        <>
          {query.isError ? (
            <ErrorNotice title="Could not refresh the dashboard" error={query.error} onRetry={() => void query.refetch()} />
          ) : null}
          <DeviceSummary devices={data.devices} />
          <div className="grid-2">
            <Card title="Most needed patches" id="top-patches">
              {data.topPatches.length === 0 ? <p className="card__note muted">No device needs a patch.</p> : (
                <div className="table-wrap">
                  <table className="table table--compact">
                    <caption className="visually-hidden">Most needed patches</caption>
                    <thead><tr><th scope="col">Patch</th><th scope="col">Severity</th><th scope="col" className="num">Devices</th></tr></thead>
                    <tbody>
                      {data.topPatches.map((p) => (
                        <tr key={p.patch.id}>
                          <th scope="row">
                            <a href={href(patchPath(p.patch.id))} className="mono">{p.patch.id}</a>
                            <span className="cell-sub">{p.patch.title}</span>
                          </th>
                          <td><SeverityBadge severity={p.patch.severity} /></td>
                          <td className="num">{formatNumber(p.devices)}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
              <p className="card__footer"><a href={href(patchesPath, { state: 'needed', sort: 'devices' })}>All needed patches</a></p>
            </Card>
            <Card title="Devices most behind" id="devices-behind">
              {data.devicesBehind.length === 0 ? <p className="card__note muted">Every assessed device is fully patched.</p> : (
                <div className="table-wrap">
                  <table className="table table--compact">
                    <caption className="visually-hidden">Devices most behind</caption>
                    <thead><tr><th scope="col">Device</th><th scope="col" className="num">Needed</th><th scope="col" className="num">Critical</th></tr></thead>
                    <tbody>
                      {data.devicesBehind.map((d) => (
                        <tr key={d.device.id}>
                          <th scope="row"><a className="hostname" href={href(devicePath(d.device.id))}>{d.device.hostname}</a></th>
                          <td className="num">{formatNumber(d.needed)}</td>
                          <td className="num">{d.critical > 0 ? <strong className="text-danger">{formatNumber(d.critical)}</strong> : 0}</td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </Card>
          </div>
          <Card title="Deployments in progress" id="deployments-progress">
            {data.deployments.length === 0 ? (
              <p className="card__note muted">No deployment is running. <a href={href(deploymentsPath)}>Deployments</a></p>
            ) : (
              <div className="table-wrap">
                <table className="table table--compact">
                  <caption className="visually-hidden">Deployments in progress</caption>
                  <thead>
                    <tr><th scope="col">Deployment</th><th scope="col">Status</th><th scope="col">Patches</th>
                      <th scope="col">Progress</th><th scope="col" className="num">Failed</th><th scope="col">Created</th></tr>
                  </thead>
                  <tbody>
                    {data.deployments.map((d) => (
                      <tr key={d.id}>
                        <th scope="row"><a className="mono" href={href(deploymentPath(d.id))} title={d.id}>{shortId(d.id)}</a></th>
                        <td><StateBadge state={d.status} /></td>
                        <td className="break">{d.patches.join(', ')}</td>
                        <td><Progress done={d.jobs.finished} total={d.jobs.total} label={`Deployment ${shortId(d.id)} progress`} /></td>
                        <td className="num">{d.jobs.failed > 0 ? <strong className="text-danger">{d.jobs.failed}</strong> : 0}</td>
                        <td className="nowrap"><RelativeTime iso={d.createdAt} /></td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </Card>
          <div className="grid-2">
            <Card title="Trend over 30 days" id="trend">
              <div className="card__body">
                <Suspense fallback={<Loading label="Loading chart…" />}><TrendChart trend={data.trend} /></Suspense>
              </div>
            </Card>
            <Card title="Time to patch (SLA)" id="sla">
              <div className="card__body">
                <Suspense fallback={<Loading label="Loading chart…" />}><SlaChart sla={data.sla} /></Suspense>
              </div>
            </Card>
          </div>
        </>
      )}
    </>
  );
}

function DeviceSummary({ devices }: { devices: Dashboard['devices'] }) {
  const needing = SEVERITIES.reduce((n, s) => n + devices.needing[s], 0);
  return (
    <section className="card summary" aria-labelledby="summary-title" data-testid="device-summary">
      <h2 id="summary-title" className="card__title">Devices</h2>
      <dl className="stats">
        <Stat term="Enrolled" value={devices.total} />
        <Stat term="Fully patched" value={devices.fullyPatched} tone="ok" />
        <Stat term="Needing patches" value={needing} tone={needing > 0 ? 'danger' : undefined} />
        <Stat term="Not assessed" value={devices.notAssessed}
          note="No feed covers their OS release: never counted as patched." />
        <Stat term="Unknown state" value={devices.unknownState} note="Facts missing to decide." />
      </dl>
      <h3 className="subhead">Needing patches, by their most severe needed patch</h3>
      <ul className="severity-bars" aria-label="Devices needing patches by severity">
        {SEVERITIES.map((s) => {
          const n = devices.needing[s];
          const pct = devices.total > 0 ? (n / devices.total) * 100 : 0;
          return (
            <li key={s}>
              <span className="severity-bars__label"><SeverityBadge severity={s} /></span>
              <span className="severity-bars__track" aria-hidden="true">
                <span className={`severity-bars__fill severity-bars__fill--${s}`} style={{ width: `${pct}%` }} />
              </span>
              <span className="severity-bars__value">{formatNumber(n)}<span className="visually-hidden"> devices</span></span>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

function Stat({ term, value, tone, note }: { term: string; value: number; tone?: 'ok' | 'danger'; note?: string }) {
  return (
    <div className={`stat${tone ? ` stat--${tone}` : ''}`}>
      <dt>{term}</dt>
      <dd>
        <span className="stat__value">{formatNumber(value)}</span>
        {note ? <span className="stat__note">{note}</span> : null}
      </dd>
    </div>
  );
}

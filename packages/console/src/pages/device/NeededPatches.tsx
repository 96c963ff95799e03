import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { apiGet, withQuery } from '../../api/client';
import type { DeviceDetail, DevicePatches, Explain, TraceNode } from '../../api/types';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { SeverityBadge, StateBadge } from '../../components/Severity';
import { href, newDeploymentPath, patchPath } from '../../router';

/** The patches this device needs, each with a "Why?" disclosure that loads the rule trace. */
export function NeededPatches({ device }: { device: DeviceDetail }) {
  const id = device.id;
  const query = useQuery({
    queryKey: ['device-patches', id, 'needed'],
    queryFn: ({ signal }) =>
      apiGet<DevicePatches>(withQuery(`/devices/${encodeURIComponent(id)}/patches`, { state: 'needed' }), { signal }),
  });
  const data = query.data;
  return (
    <section className="card card--flush" aria-labelledby="needed-title" id="section-patches" data-testid="device-needed-patches">
      <div className="card__header">
        <h2 id="needed-title" className="card__title">Needed patches</h2>
        {data?.assessed === 'assessed' ? (
          <p className="muted" aria-live="polite">{data.items.length} needed</p>
        ) : null}
      </div>
      {query.isPending ? (
        <Loading label="Loading needed patches…" />
      ) : !data ? (
        <ErrorNotice title="Could not load needed patches" error={query.error} onRetry={() => void query.refetch()} />
      ) : data.assessed === 'pending' ? (
        <p className="card__note muted">Not evaluated yet: the device has not sent an inventory.</p>
      ) : data.assessed === 'not_assessed' ? (
        <p className="card__note"><StateBadge state="not_assessed" /> No feed in the catalog covers this device’s OS release and
          architecture, so its patch state is unknown. It is not counted as patched.</p>
      ) : data.items.length === 0 ? (
        <p className="card__note">This device needs no patch.</p>
      ) : (
        <div className="table-wrap">
          <table className="table">
            <caption className="visually-hidden">Patches {device.hostname} needs</caption>
            <thead>
              <tr>
                <th scope="col">Patch</th>
                <th scope="col">Title</th>
                <th scope="col">Severity</th>
                <th scope="col"><span className="visually-hidden">Actions</span></th>
              </tr>
            </thead>
            <tbody>
              {data.items.map((p) => <PatchRow key={p.patch} deviceId={id} hostname={device.hostname} item={p} />)}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function PatchRow({ deviceId, hostname, item }: { deviceId: string; hostname: string; item: DevicePatches['items'][number] }) {
  const [open, setOpen] = useState(false);
  const panelId = `why-${item.patch.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    <>
      <tr>
        <th scope="row" className="mono cell-strong"><a href={href(patchPath(item.patch))}>{item.patch}</a></th>
        <td className="break">{item.title}</td>
        <td><SeverityBadge severity={item.severity} /></td>
        <td className="cell-actions">
          <button type="button" className="button button--small" aria-expanded={open} aria-controls={panelId}
            onClick={() => setOpen((o) => !o)}>
            Why?<span className="visually-hidden"> {item.patch} is needed</span>
          </button>
          <a className="button button--small" href={href(newDeploymentPath, { device: deviceId, patch: item.patch })}>
            Deploy<span className="visually-hidden"> {item.patch} to {hostname}</span>
          </a>
        </td>
      </tr>
      {open ? (
        <tr className="row-detail">
          <td colSpan={4} id={panelId}>
            <Why deviceId={deviceId} patch={item.patch} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

function Why({ deviceId, patch }: { deviceId: string; patch: string }) {
  const query = useQuery({
    queryKey: ['explain', deviceId, patch],
    queryFn: ({ signal }) => apiGet<Explain>(withQuery(`/devices/${encodeURIComponent(deviceId)}/explain`, { patch }), { signal }),
  });
  if (query.isPending) return <Loading label="Loading the rule trace…" />;
  if (!query.data) return <ErrorNotice title="Could not explain this patch" error={query.error} />;
  const e = query.data;
  return (
    <div className="explain" aria-live="polite" data-testid="explain">
      <p>
        <StateBadge state={e.state} /> {e.reason ? <span>{e.reason}</span> : null}
        {e.by ? <> (by <a href={href(patchPath(e.by))} className="mono">{e.by}</a>)</> : null}
        {e.missing?.length ? <> Missing facts: <span className="mono">{e.missing.join(', ')}</span></> : null}
      </p>
      <div className="explain__rules">
        <div>
          <h3 className="subhead">Applicability</h3>
          <Trace node={e.applicability} />
        </div>
        <div>
          <h3 className="subhead">Installed</h3>
          <Trace node={e.installed} />
        </div>
      </div>
    </div>
  );
}

const RESULT_TEXT: Record<string, string> = { true: 'true', false: 'false', unknown: 'unknown' };

/** A rule trace as a nested list: each rule, its result and the values it compared. */
export function Trace({ node }: { node: TraceNode }) {
  return (
    <ul className="trace">
      <TraceItem node={node} />
    </ul>
  );
}

function TraceItem({ node }: { node: TraceNode }) {
  return (
    <li>
      <span className={`trace__result trace__result--${node.result}`}>{RESULT_TEXT[node.result] ?? node.result}</span>{' '}
      <code className="trace__rule">{node.rule}</code>
      {node.detail ? <span className="trace__detail"> — {node.detail}</span> : null}
      {node.children?.length ? (
        <ul>
          {node.children.map((c, i) => <TraceItem key={i} node={c} />)}
        </ul>
      ) : null}
    </li>
  );
}

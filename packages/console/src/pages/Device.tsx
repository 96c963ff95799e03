import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useRef, type MouseEvent, type ReactNode } from 'react';
import { apiGet, apiSend } from '../api/client';
import type { DeviceDetail } from '../api/types';
import { Badge, Labels, StatusBadge } from '../components/Badge';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { osLabel, shortHash } from '../components/format';
import { PackageCount } from '../components/Inventory';
import { PageHeading } from '../components/PageHeading';
import { RelativeTime } from '../components/RelativeTime';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { devicePath, devicesPath, href, newDeploymentPath } from '../router';
import { Collectors } from './device/Collectors';
import { History } from './device/History';
import { NeededPatches } from './device/NeededPatches';
import { Packages } from './device/Packages';

const REFRESH_MS = 10_000;

/** "Scan now": the agent hears it on its waiting job request and checks in within seconds. */
function ScanNow({ id }: { id: string }) {
  const queryClient = useQueryClient();
  const scan = useMutation({
    mutationFn: () => apiSend<{ at: string }>('POST', `/devices/${encodeURIComponent(id)}/scan`),
    onSuccess: () => {
      // the check-in it causes arrives as a live event too; this catches it without one
      setTimeout(() => void queryClient.invalidateQueries({ queryKey: ['device', id] }), 3000);
    },
  });
  return (
    <span className="page-header__action">
      <button type="button" className="button" disabled={scan.isPending} onClick={() => scan.mutate()}>Scan now</button>
      <span role="status" className="muted">
        {scan.isSuccess ? ' Scan requested: the device reports within seconds while its agent runs.' : scan.isError ? ` Scan not requested: ${scan.error.message}` : ''}
      </span>
    </span>
  );
}

/** A pending re-enrollment or a suspected clone: what it means, and the administrator's approval. */
function IdentityNotice({ device }: { device: DeviceDetail }) {
  const queryClient = useQueryClient();
  const approve = useMutation({
    mutationFn: () => apiSend<{ revoked: string | null }>('POST', `/devices/${encodeURIComponent(device.id)}/approve`, { json: { keepOriginal: false } }),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['device', device.id] }),
  });
  const pending = device.status === 'pending';
  if (!pending && !device.identity.cloneSuspectedAt) return null;
  return (
    <section className="card notice notice--warn" aria-labelledby="identity-title">
      <h2 id="identity-title" className="card__title">{pending ? 'Waiting for approval' : 'Two machines may share this identity'}</h2>
      <p>
        {pending
          ? <>This machine enrolled again while its earlier record{device.identity.duplicateOf ? <> (<a href={href(devicePath(device.identity.duplicateOf))}>the active one</a>)</> : null} is active: a reinstall, a restored image or a copied identity. Approving makes this the machine&apos;s record and revokes the earlier one.</>
          : <>Since <RelativeTime iso={device.identity.cloneSuspectedAt} />, check-ins of this device arrive with counts that go back: a cloned disk or a copied agent data directory. Check the machines; approving clears the warning.</>}
      </p>
      <button type="button" className="button button--primary" disabled={approve.isPending} onClick={() => approve.mutate()}>
        {pending ? 'Approve this enrollment' : 'Clear the warning'}
      </button>
      <span role="status" className="muted">{approve.isError ? ` Not approved: ${approve.error.message}` : ''}</span>
    </section>
  );
}

export function DevicePage({ id, params }: { id: string; params: URLSearchParams }) {
  const queryClient = useQueryClient();
  const detail = useQuery({
    queryKey: ['device', id],
    queryFn: ({ signal }) => apiGet<DeviceDetail>(`/devices/${encodeURIComponent(id)}`, { signal }),
    refetchInterval: REFRESH_MS,
  });
  const device = detail.data;
  useDocumentTitle(device?.hostname ?? 'Device');

  // A new inventory (its hash changed on a check-in) makes the package pages stale.
  const hash = device?.inventoryHash;
  const seenHash = useRef(hash);
  useEffect(() => {
    if (seenHash.current !== undefined && hash !== seenHash.current) {
      void queryClient.invalidateQueries({ queryKey: ['device-packages', id] });
    }
    seenHash.current = hash;
  }, [hash, id, queryClient]);

  // `?section=patches|history|packages` (links from lists): bring that section into view once.
  const section = params.get('section');
  const loaded = device !== undefined;
  useEffect(() => {
    if (loaded && section) document.getElementById(`section-${section}`)?.scrollIntoView({ block: 'start' });
  }, [loaded, section]);

  return (
    <>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <ol>
          <li><a href={href(devicesPath)}>Devices</a></li>
          <li aria-current="page">{device?.hostname ?? id}</li>
        </ol>
      </nav>
      <div className="page-header">
        <PageHeading page={`device:${id}`}>{device?.hostname ?? 'Device'}</PageHeading>
        {device ? <StatusBadge status={device.status} /> : null}
        {device && device.status === 'active' ? (
          <>
            <ScanNow id={device.id} />
            <a className="button button--primary page-header__action" href={href(newDeploymentPath, { device: device.id })}>
              Deploy a patch
            </a>
          </>
        ) : null}
      </div>
      {device ? (
        <nav aria-label="Sections of this page" className="section-nav">
          <ul>
            <li><a href={href(devicePath(id), { section: 'patches' })} onClick={jump('section-patches')}>Needed patches</a></li>
            <li><a href={href(devicePath(id), { section: 'history' })} onClick={jump('section-history')}>History</a></li>
            <li><a href={href(devicePath(id), { section: 'packages' })} onClick={jump('section-packages')}>Packages</a></li>
          </ul>
        </nav>
      ) : null}

      {detail.isPending ? (
        <Loading label="Loading device…" />
      ) : !device ? (
        <ErrorNotice title="Could not load this device" error={detail.error} onRetry={() => void detail.refetch()} />
      ) : (
        <>
          {detail.isError ? (
            <ErrorNotice title="Could not refresh this device" error={detail.error} onRetry={() => void detail.refetch()} />
          ) : null}
          <IdentityNotice device={device} />
          <div className="device-grid">
            <section className="card" aria-labelledby="facts-title">
              <h2 id="facts-title" className="card__title">Facts</h2>
              <Facts device={device} />
            </section>
            <div className="device-grid__side">
              <section className="card" aria-labelledby="membership-title">
                <h2 id="membership-title" className="card__title">Group and labels</h2>
                <dl className="facts">
                  <Fact term="Group">{device.group ? device.group.name : <span className="muted">none</span>}</Fact>
                  <Fact term="Labels"><Labels labels={device.labels} /></Fact>
                </dl>
              </section>
              <section className="card card--flush" aria-labelledby="collectors-title">
                <h2 id="collectors-title" className="card__title">Collectors</h2>
                <Collectors collectors={device.collectors} />
              </section>
            </div>
          </div>
          <NeededPatches device={device} />
          <History device={device} routeId={id} params={params} />
          <Packages device={device} routeId={id} params={params} />
        </>
      )}
    </>
  );
}

/** In-page links: the hash is the router's, so move focus and scroll by hand. */
function jump(target: string) {
  return (e: MouseEvent<HTMLAnchorElement>) => {
    e.preventDefault();
    const el = document.getElementById(target);
    if (!el) return;
    el.scrollIntoView({ block: 'start' });
    const heading = el.querySelector<HTMLElement>('h2');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    }
  };
}

function Facts({ device }: { device: DeviceDetail }) {
  const os = device.os;
  const version = os ? [os.version, os.versionCodename ? `(${os.versionCodename})` : ''].filter(Boolean).join(' ') : '';
  return (
    <dl className="facts">
      <Fact term="Hostname">{device.hostname}</Fact>
      <Fact term="Operating system">{osLabel(os)}</Fact>
      <Fact term="Version">{version || dash}</Fact>
      <Fact term="Kernel">{device.kernel ? <span className="mono">{device.kernel}</span> : dash}</Fact>
      <Fact term="Machine architecture">{os?.machine ? <span className="mono">{os.machine}</span> : dash}</Fact>
      <Fact term="Package architecture">{os?.packageArch ? <span className="mono">{os.packageArch}</span> : dash}</Fact>
      <Fact term="Time zone">{device.timezone ?? dash}</Fact>
      <Fact term="Reboot required">
        {device.rebootRequired ? <Badge tone="warn">yes</Badge> : 'no'}
      </Fact>
      <Fact term="Agent version">{device.agentVersion ? <span className="mono">{device.agentVersion}</span> : dash}</Fact>
      <Fact term="Machine ID">{device.machineId ? <span className="mono break">{device.machineId}</span> : dash}</Fact>
      <Fact term="Enrolled"><RelativeTime iso={device.enrolledAt} /></Fact>
      <Fact term="Requests">{device.identity.signed ? 'signed with the device’s own key' : <Badge tone="warn">token only</Badge>}</Fact>
      <Fact term="Last seen"><RelativeTime iso={device.lastSeenAt} /></Fact>
      <Fact term="Packages"><PackageCount device={device} /></Fact>
      <Fact term="Inventory hash">
        {device.inventoryHash ? (
          <code className="mono" title={device.inventoryHash}>{shortHash(device.inventoryHash)}</code>
        ) : dash}
      </Fact>
    </dl>
  );
}

const dash = <span className="muted">—</span>;

function Fact({ term, children }: { term: string; children: ReactNode }) {
  return (
    <div className="facts__row">
      <dt>{term}</dt>
      <dd>{children}</dd>
    </div>
  );
}

import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useId, useState, type FormEvent } from 'react';
import { apiGet, apiSend, isMissingRoute } from '../api/client';
import type { Deployment, DeploymentBody, DeploymentPreview, Group, RingInput } from '../api/types';
import { ErrorNotice, Loading } from '../components/ErrorNotice';
import { formatNumber, splitList } from '../components/format';
import { PageHeading } from '../components/PageHeading';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { deploymentPath, deploymentsPath, href, navigate } from '../router';

type RingForm = { key: number; name: string; mode: 'percent' | 'groups'; percent: string; groups: string[]; bakeMinutes: string; failurePct: string };
type Reboot = 'never' | 'window-end' | 'deadline';

let ringKey = 0;
const newRing = (name: string, percent: string): RingForm =>
  ({ key: ++ringKey, name, mode: 'percent', percent, groups: [], bakeMinutes: '60', failurePct: '0' });

/** "2026-11-26T14:05" for a datetime-local input, in the browser's zone. */
function localInput(t: number): string {
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function toIso(local: string): string | null {
  const t = Date.parse(local);
  return Number.isNaN(t) ? null : new Date(t).toISOString();
}

/** The form as the API's body, or what is missing. */
function buildBody(f: {
  patches: string; groups: string[]; labels: string; devices: string; exGroups: string[]; exLabels: string; exDevices: string;
  start: string; deadline: string; rings: RingForm[]; reboot: Reboot;
}): { body: DeploymentBody | null; problems: string[] } {
  const problems: string[] = [];
  const patches = splitList(f.patches);
  if (patches.length === 0) problems.push('Name at least one patch.');
  const labels = splitList(f.labels);
  const devices = splitList(f.devices);
  if (f.groups.length + labels.length + devices.length === 0) problems.push('Choose at least one target: a group, a label or a device.');
  const start = toIso(f.start);
  if (!start) problems.push('Give a start time.');
  const deadline = f.deadline ? toIso(f.deadline) : null;
  if (f.deadline && !deadline) problems.push('The deadline is not a valid time.');
  if (start && deadline && deadline <= start) problems.push('The deadline must be after the start.');
  const rings: RingInput[] = [];
  f.rings.forEach((r, i) => {
    const name = r.name.trim() || `ring ${i + 1}`;
    const bakeMinutes = Number(r.bakeMinutes || '0');
    const failureThreshold = Number(r.failurePct || '0') / 100;
    if (!Number.isInteger(bakeMinutes) || bakeMinutes < 0) problems.push(`Ring ${i + 1}: bake minutes must be a whole number, 0 or more.`);
    if (!(failureThreshold >= 0 && failureThreshold <= 1)) problems.push(`Ring ${i + 1}: the failure threshold is a percentage from 0 to 100.`);
    if (r.mode === 'percent') {
      const percent = Number(r.percent);
      if (!(percent > 0 && percent <= 100)) problems.push(`Ring ${i + 1}: the share of devices is a percentage above 0, at most 100.`);
      rings.push({ name, percent, bakeMinutes, failureThreshold });
    } else {
      if (r.groups.length === 0) problems.push(`Ring ${i + 1}: choose at least one group.`);
      rings.push({ name, groups: r.groups, bakeMinutes, failureThreshold });
    }
  });
  if (problems.length || !start) return { body: null, problems };
  const exLabels = splitList(f.exLabels);
  const exDevices = splitList(f.exDevices);
  const exclude = {
    ...(f.exGroups.length ? { groups: f.exGroups } : {}),
    ...(exLabels.length ? { labels: exLabels } : {}),
    ...(exDevices.length ? { devices: exDevices } : {}),
  };
  return {
    body: {
      patches,
      ...(f.groups.length ? { groups: f.groups } : {}),
      ...(labels.length ? { labels } : {}),
      ...(devices.length ? { devices } : {}),
      ...(Object.keys(exclude).length ? { exclude } : {}),
      start,
      ...(deadline ? { deadline } : {}),
      ...(rings.length ? { rings } : {}),
      reboot: f.reboot,
    },
    problems,
  };
}

function useDebounced<T>(value: T, ms: number): T {
  const [v, setV] = useState(value);
  useEffect(() => {
    const t = setTimeout(() => setV(value), ms);
    return () => clearTimeout(t);
  }, [value, ms]);
  return v;
}

export function NewDeploymentPage({ params }: { params: URLSearchParams }) {
  useDocumentTitle('New deployment');
  const queryClient = useQueryClient();
  const groupsQuery = useQuery({ queryKey: ['groups'], queryFn: ({ signal }) => apiGet<{ items: Group[] }>('/groups', { signal }) });
  const groupNames = (groupsQuery.data?.items ?? []).map((g) => g.name);

  const [patches, setPatches] = useState(() => params.getAll('patch').join('\n'));
  const [groups, setGroups] = useState<string[]>(() => params.getAll('group'));
  const [labels, setLabels] = useState('');
  const [devices, setDevices] = useState(() => params.getAll('device').join('\n'));
  const [exGroups, setExGroups] = useState<string[]>([]);
  const [exLabels, setExLabels] = useState('');
  const [exDevices, setExDevices] = useState('');
  const [start, setStart] = useState(() => localInput(Date.now()));
  const [deadline, setDeadline] = useState('');
  const [rings, setRings] = useState<RingForm[]>(() => [newRing('all devices', '100')]);
  const [reboot, setReboot] = useState<Reboot>('never');
  const [showProblems, setShowProblems] = useState(false);

  const { body, problems } = buildBody({ patches, groups, labels, devices, exGroups, exLabels, exDevices, start, deadline, rings, reboot });
  const bodyKey = useDebounced(body ? JSON.stringify(body) : null, 500);

  const preview = useQuery({
    queryKey: ['deployment-preview', bodyKey],
    queryFn: ({ signal }) => apiSend<DeploymentPreview>('POST', '/deployments/preview', { json: JSON.parse(bodyKey!) as unknown }, { signal }),
    enabled: bodyKey !== null,
    retry: false,
    staleTime: 10_000,
  });

  const create = useMutation({
    mutationFn: (b: DeploymentBody) => apiSend<Deployment>('POST', '/deployments', { json: b }),
    onSuccess: (d) => {
      void queryClient.invalidateQueries({ queryKey: ['deployments'] });
      void queryClient.invalidateQueries({ queryKey: ['dashboard'] });
      navigate(href(deploymentPath(d.id)));
    },
  });

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setShowProblems(true);
    if (body) create.mutate(body);
  };
  const setRing = (key: number, change: Partial<RingForm>) => setRings((rs) => rs.map((r) => (r.key === key ? { ...r, ...change } : r)));

  return (
    <>
      <nav aria-label="Breadcrumb" className="breadcrumb">
        <ol>
          <li><a href={href(deploymentsPath)}>Deployments</a></li>
          <li aria-current="page">New deployment</li>
        </ol>
      </nav>
      <div className="page-header">
        <PageHeading page="newDeployment">New deployment</PageHeading>
      </div>
      <div className="deploy-layout">
        <form className="card form" onSubmit={submit} noValidate aria-label="New deployment" data-testid="deployment-form">
          <fieldset className="fieldset">
            <legend>Patches</legend>
            <label htmlFor="dep-patches" className="field__label">Patch IDs</label>
            <textarea id="dep-patches" className="input" rows={3} value={patches} onChange={(e) => setPatches(e.target.value)}
              aria-describedby="dep-patches-help" spellCheck={false} />
            <p id="dep-patches-help" className="field__help">One per line or separated by commas. Each must be approved for the target devices’ groups.</p>
          </fieldset>

          <fieldset className="fieldset">
            <legend>Targets</legend>
            <GroupChecks legend="Groups" names={groupNames} value={groups} onChange={setGroups} loading={groupsQuery.isPending} />
            <TextField id="dep-labels" label="Labels" value={labels} onChange={setLabels} help="e.g. env=prod, separated by commas." />
            <TextField id="dep-devices" label="Devices" value={devices} onChange={setDevices} multiline help="Device ids or hostnames, one per line." />
            <details className="details" open={exGroups.length > 0 || exLabels !== '' || exDevices !== ''}>
              <summary>Exclusions</summary>
              <GroupChecks legend="Exclude groups" names={groupNames} value={exGroups} onChange={setExGroups} loading={groupsQuery.isPending} />
              <TextField id="dep-ex-labels" label="Exclude labels" value={exLabels} onChange={setExLabels} />
              <TextField id="dep-ex-devices" label="Exclude devices" value={exDevices} onChange={setExDevices} multiline />
            </details>
          </fieldset>

          <fieldset className="fieldset">
            <legend>Schedule</legend>
            <div className="form-grid">
              <div className="field">
                <label htmlFor="dep-start" className="field__label">Start</label>
                <input id="dep-start" type="datetime-local" className="input" value={start} onChange={(e) => setStart(e.target.value)} />
              </div>
              <div className="field">
                <label htmlFor="dep-deadline" className="field__label">Deadline (optional)</label>
                <input id="dep-deadline" type="datetime-local" className="input" value={deadline} onChange={(e) => setDeadline(e.target.value)}
                  aria-describedby="dep-deadline-help" />
              </div>
              <div className="field">
                <label htmlFor="dep-reboot" className="field__label">Reboot policy</label>
                <select id="dep-reboot" className="input" value={reboot} onChange={(e) => setReboot(e.target.value as Reboot)}>
                  <option value="never">never (reboot stays pending)</option>
                  <option value="window-end">at the end of the maintenance window</option>
                  <option value="deadline">at the deadline</option>
                </select>
              </div>
            </div>
            <p id="dep-deadline-help" className="field__help">Times are in this browser’s time zone. Installs run inside each device’s maintenance windows, or anyway once the deadline has passed.</p>
          </fieldset>

          <fieldset className="fieldset">
            <legend>Rings</legend>
            <ol className="rings">
              {rings.map((r, i) => (
                <li key={r.key} className="ring" aria-label={`Ring ${i + 1}`}>
                  <div className="form-grid">
                    <TextField id={`ring-${r.key}-name`} label={`Ring ${i + 1} name`} value={r.name} onChange={(v) => setRing(r.key, { name: v })} />
                    <div className="field">
                      <label htmlFor={`ring-${r.key}-mode`} className="field__label">Ring {i + 1} devices by</label>
                      <select id={`ring-${r.key}-mode`} className="input" value={r.mode}
                        onChange={(e) => setRing(r.key, { mode: e.target.value as RingForm['mode'] })}>
                        <option value="percent">percentage</option>
                        <option value="groups">groups</option>
                      </select>
                    </div>
                    {r.mode === 'percent' ? (
                      <NumberField id={`ring-${r.key}-percent`} label={`Ring ${i + 1} percent of devices`} value={r.percent} min={1} max={100}
                        onChange={(v) => setRing(r.key, { percent: v })} />
                    ) : null}
                    <NumberField id={`ring-${r.key}-bake`} label={`Ring ${i + 1} bake minutes`} value={r.bakeMinutes} min={0}
                      onChange={(v) => setRing(r.key, { bakeMinutes: v })} />
                    <NumberField id={`ring-${r.key}-failure`} label={`Ring ${i + 1} failure threshold %`} value={r.failurePct} min={0} max={100}
                      onChange={(v) => setRing(r.key, { failurePct: v })} />
                  </div>
                  {r.mode === 'groups' ? (
                    <GroupChecks legend={`Ring ${i + 1} groups`} names={groupNames} value={r.groups} onChange={(g) => setRing(r.key, { groups: g })}
                      loading={groupsQuery.isPending} />
                  ) : null}
                  {rings.length > 1 ? (
                    <button type="button" className="button button--small" onClick={() => setRings((rs) => rs.filter((x) => x.key !== r.key))}>
                      Remove ring {i + 1}
                    </button>
                  ) : null}
                </li>
              ))}
            </ol>
            <button type="button" className="button button--small" onClick={() => setRings((rs) => [...rs, newRing(`ring ${rs.length + 1}`, '100')])}>
              Add a ring
            </button>
            <p className="field__help">A ring starts once the previous one finished and baked healthy; it halts the deployment when failed ÷ finished goes above its threshold.</p>
          </fieldset>

          {showProblems && problems.length ? (
            <div className="notice notice--error" role="alert">
              <p className="notice__title">The deployment is not complete</p>
              <ul>{problems.map((p) => <li key={p}>{p}</li>)}</ul>
            </div>
          ) : null}
          {create.isError ? <ErrorNotice title="The server refused this deployment" error={create.error} /> : null}
          <div className="form__actions">
            <button type="submit" className="button button--primary" disabled={create.isPending}>
              {create.isPending ? 'Creating…' : 'Create deployment'}
            </button>
            <a className="button" href={href(deploymentsPath)}>Cancel</a>
          </div>
        </form>

        <section className="card preview" aria-labelledby="preview-title" data-testid="deployment-preview">
          <h2 id="preview-title" className="card__title">Preview</h2>
          <PreviewBody ready={body !== null} problems={problems} pending={preview.isFetching} data={preview.data} error={preview.error}
            stale={bodyKey !== (body ? JSON.stringify(body) : null)} />
        </section>
      </div>
    </>
  );
}

function PreviewBody({ ready, problems, pending, data, error, stale }: {
  ready: boolean; problems: string[]; pending: boolean; data: DeploymentPreview | undefined; error: unknown; stale: boolean;
}) {
  if (!ready) {
    return <p className="muted">The preview shows which devices each ring reaches once the form is complete. {problems[0] ?? ''}</p>;
  }
  if (error && !data) {
    if (isMissingRoute(error)) return <p className="muted">This server has no preview: create the deployment and see its rings on its page.</p>;
    return <ErrorNotice title="The server would refuse this deployment" error={error} />;
  }
  if (!data) return <Loading label="Computing the preview…" />;
  const devices = data.rings.reduce((n, r) => n + r.devices.length, 0);
  const jobs = data.rings.reduce((n, r) => n + r.jobs, 0);
  return (
    <div className={stale || pending ? 'is-stale' : undefined} aria-busy={stale || pending}>
      <p aria-live="polite" className="preview__summary">
        {data.targeted !== undefined ? `${formatNumber(data.targeted)} targeted; ` : ''}
        {formatNumber(devices)} device{devices === 1 ? '' : 's'} needing a patch in {data.rings.length} ring{data.rings.length === 1 ? '' : 's'}, {formatNumber(jobs)} job{jobs === 1 ? '' : 's'}.
      </p>
      {data.notApproved.length ? (
        <div className="notice notice--error" data-testid="preview-not-approved">
          <p className="notice__title">Not approved: the server would refuse this deployment</p>
          <ul>
            {data.notApproved.map((n) => (typeof n === 'string' ? <li key={n} className="mono">{n}</li> : (
              <li key={n.patch}>
                <span className="mono">{n.patch}</span>: {n.message}
                {n.hint ? <div className="notice__hint">{n.hint}</div> : null}
              </li>
            )))}
          </ul>
        </div>
      ) : null}
      <ol className="preview__rings">
        {data.rings.map((r, i) => (
          <li key={i}>
            <p>
              <strong>{r.name}</strong>: {formatNumber(r.devices.length)} devices, {formatNumber(r.jobs)} jobs
              {r.exact === false ? <span className="cell-sub">A share of the devices: which ones is drawn again at creation; the size holds.</span> : null}
            </p>
            {r.devices.length ? (
              <details className="details">
                <summary>Devices in {r.name}</summary>
                <ul className="plain-list">
                  {r.devices.slice(0, 200).map((d) => <li key={d.id}>{d.hostname}</li>)}
                  {r.devices.length > 200 ? <li className="muted">and {r.devices.length - 200} more</li> : null}
                </ul>
              </details>
            ) : null}
          </li>
        ))}
      </ol>
      {data.unassigned.length ? (
        <p className="muted">
          {data.unassigned.length} device(s) are in no ring and get no job:{' '}
          {data.unassigned.slice(0, 20).map((u) => (typeof u === 'string' ? u : u.hostname)).join(', ')}
          {data.unassigned.length > 20 ? '…' : ''}
        </p>
      ) : null}
      {data.undoLimits.length ? (
        <div className="notice notice--info">
          <p className="notice__title">Undo will not restore everything</p>
          <ul>{data.undoLimits.map((u) => <li key={u.patch}><span className="mono">{u.patch}</span>: {u.reasons.join('; ')}</li>)}</ul>
        </div>
      ) : null}
    </div>
  );
}

function TextField({ id, label, value, onChange, help, multiline = false }: {
  id: string; label: string; value: string; onChange: (v: string) => void; help?: string; multiline?: boolean;
}) {
  return (
    <div className="field">
      <label htmlFor={id} className="field__label">{label}</label>
      {multiline ? (
        <textarea id={id} className="input" rows={2} value={value} spellCheck={false} onChange={(e) => onChange(e.target.value)}
          aria-describedby={help ? `${id}-help` : undefined} />
      ) : (
        <input id={id} className="input" value={value} spellCheck={false} autoComplete="off" onChange={(e) => onChange(e.target.value)}
          aria-describedby={help ? `${id}-help` : undefined} />
      )}
      {help ? <p id={`${id}-help`} className="field__help">{help}</p> : null}
    </div>
  );
}

function NumberField({ id, label, value, onChange, min, max }: { id: string; label: string; value: string; onChange: (v: string) => void; min?: number; max?: number }) {
  return (
    <div className="field">
      <label htmlFor={id} className="field__label">{label}</label>
      <input id={id} type="number" inputMode="numeric" className="input" value={value} min={min} max={max} onChange={(e) => onChange(e.target.value)} />
    </div>
  );
}

function GroupChecks({ legend, names, value, onChange, loading }: { legend: string; names: string[]; value: string[]; onChange: (v: string[]) => void; loading: boolean }) {
  const id = useId();
  return (
    <fieldset className="checks">
      <legend className="field__label">{legend}</legend>
      {loading ? <p className="muted">Loading groups…</p> : names.length === 0 ? <p className="muted">No groups yet.</p> : (
        <ul className="checks__list">
          {names.map((n, i) => (
            <li key={n}>
              <input type="checkbox" id={`${id}-${i}`} checked={value.includes(n)}
                onChange={(e) => onChange(e.target.checked ? [...value, n] : value.filter((x) => x !== n))} />
              <label htmlFor={`${id}-${i}`}>{n}</label>
            </li>
          ))}
        </ul>
      )}
    </fieldset>
  );
}

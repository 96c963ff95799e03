import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState, type FormEvent } from 'react';
import { apiGet, apiSend } from '../../api/client';
import type { FreezePeriod, MaintenanceWindow } from '../../api/types';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { useGroups } from './Groups';

type Schedule = { group: string; windows: MaintenanceWindow[]; freezes: FreezePeriod[] };

const WINDOW_EXAMPLE = '[{ "kind": "weekly", "days": ["sat"], "start": "02:00", "durationMinutes": 180 }]';
const FREEZE_EXAMPLE = '[{ "kind": "yearly", "from": "12-20", "to": "01-05", "reason": "holidays" }]';

function describeWindow(w: MaintenanceWindow): string {
  const h = Math.floor(w.durationMinutes / 60);
  const m = w.durationMinutes % 60;
  const dur = `${h ? `${h} h` : ''}${h && m ? ' ' : ''}${m ? `${m} min` : ''}`;
  if (w.kind === 'weekly') return `Every ${w.days.join(', ')} at ${w.start} for ${dur} (device local time)`;
  const week = w.week === 'last' ? 'last' : ['1st', '2nd', '3rd', '4th'][w.week - 1];
  const offset = w.offsetDays ? ` ${w.offsetDays > 0 ? '+' : ''}${w.offsetDays} days` : '';
  return `The ${week} ${w.weekday} of each month${offset} at ${w.start} for ${dur} (device local time)`;
}

function describeFreeze(f: FreezePeriod): string {
  if (f.kind === 'absolute') return `From ${new Date(f.start).toISOString()} to ${new Date(f.end).toISOString()}${f.reason ? `: ${f.reason}` : ''}`;
  return `Every year from ${f.from} to ${f.to}${f.timeZone ? ` (${f.timeZone})` : ''}${f.reason ? `: ${f.reason}` : ''}`;
}

/** Maintenance windows and freezes of one group, edited as JSON (the server checks every field). */
export function Windows() {
  const groups = useGroups();
  const [group, setGroup] = useState('');
  const names = groups.data?.items.map((g) => g.name) ?? [];
  const selected = group || names[0] || '';
  return (
    <section className="card" id="settings-windows" aria-labelledby="windows-title" data-testid="settings-windows">
      <h2 id="windows-title" className="card__title">Maintenance windows and freezes</h2>
      {groups.isPending ? <Loading label="Loading groups…" /> : names.length === 0 ? (
        <p className="muted">Create a group first: windows and freezes belong to groups.</p>
      ) : (
        <>
          <div className="field field--narrow">
            <label htmlFor="windows-group" className="field__label">Schedule of group</label>
            <select id="windows-group" className="input" value={selected} onChange={(e) => setGroup(e.target.value)}>
              {names.map((n) => <option key={n} value={n}>{n}</option>)}
            </select>
          </div>
          <ScheduleEditor key={selected} group={selected} />
        </>
      )}
    </section>
  );
}

function ScheduleEditor({ group }: { group: string }) {
  const queryClient = useQueryClient();
  const q = useQuery({
    queryKey: ['group-windows', group],
    queryFn: ({ signal }) => apiGet<Schedule>(`/groups/${encodeURIComponent(group)}/windows`, { signal }),
  });
  const [windows, setWindows] = useState('');
  const [freezes, setFreezes] = useState('');
  const [parseError, setParseError] = useState<string | null>(null);
  const [saved, setSaved] = useState('');
  useEffect(() => {
    if (q.data) {
      setWindows(JSON.stringify(q.data.windows, null, 2));
      setFreezes(JSON.stringify(q.data.freezes, null, 2));
    }
  }, [q.data]);
  const save = useMutation({
    mutationFn: (body: { windows: unknown; freezes: unknown }) => apiSend<Schedule>('PUT', `/groups/${encodeURIComponent(group)}/windows`, { json: body }),
    onSuccess: (s) => {
      setSaved(`Saved: ${s.windows.length} window(s), ${s.freezes.length} freeze(s) for ${s.group}.`);
      queryClient.setQueryData(['group-windows', group], s);
    },
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    setParseError(null);
    setSaved('');
    try {
      save.mutate({ windows: JSON.parse(windows || '[]') as unknown, freezes: JSON.parse(freezes || '[]') as unknown });
    } catch (err) {
      setParseError(`Not valid JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  if (q.isPending) return <Loading label="Loading the schedule…" />;
  if (!q.data) return <ErrorNotice title="Could not load the schedule" error={q.error} onRetry={() => void q.refetch()} />;
  return (
    <>
      <div className="schedule-summary">
        <h3 className="subhead">Current schedule of {group}</h3>
        {q.data.windows.length === 0 ? <p className="muted">No windows: installs may start at any time.</p> : (
          <ul>{q.data.windows.map((w, i) => <li key={i}>{describeWindow(w)}</li>)}</ul>
        )}
        {q.data.freezes.length === 0 ? <p className="muted">No freezes.</p> : (
          <ul>{q.data.freezes.map((f, i) => <li key={i}>Freeze: {describeFreeze(f)}</li>)}</ul>
        )}
      </div>
      <form onSubmit={submit} className="form">
        <div className="form-grid form-grid--2">
          <div className="field">
            <label htmlFor="windows-json" className="field__label">Windows (JSON)</label>
            <textarea id="windows-json" className="input mono" rows={6} spellCheck={false} value={windows} onChange={(e) => setWindows(e.target.value)}
              aria-describedby="windows-help" />
            <p id="windows-help" className="field__help">Weekly or monthly. Example: <code>{WINDOW_EXAMPLE}</code></p>
          </div>
          <div className="field">
            <label htmlFor="freezes-json" className="field__label">Freezes (JSON)</label>
            <textarea id="freezes-json" className="input mono" rows={6} spellCheck={false} value={freezes} onChange={(e) => setFreezes(e.target.value)}
              aria-describedby="freezes-help" />
            <p id="freezes-help" className="field__help">Yearly (MM-DD) or absolute (epoch ms). Example: <code>{FREEZE_EXAMPLE}</code></p>
          </div>
        </div>
        {parseError ? <p className="field__error" role="alert">{parseError}</p> : null}
        {save.isError ? <ErrorNotice title="The schedule was not saved" error={save.error} /> : null}
        <p className="visually-hidden" aria-live="polite">{saved}</p>
        {saved ? <p className="notice notice--info">{saved}</p> : null}
        <button type="submit" className="button button--primary" disabled={save.isPending}>Save schedule</button>
      </form>
    </>
  );
}

import type { DeviceStatus } from '../api/types';

export function StatusBadge({ status }: { status: DeviceStatus }) {
  return <span className={`badge badge--${status === 'active' ? 'ok' : status === 'pending' ? 'warn' : 'danger'}`}>{status}</span>;
}

type Tone = 'ok' | 'warn' | 'danger' | 'neutral';

export function Badge({ tone, children, title }: { tone: Tone; children: string; title?: string }) {
  return (
    <span className={`badge badge--${tone}`} title={title}>
      {children}
    </span>
  );
}

export function Labels({ labels }: { labels: string[] }) {
  if (labels.length === 0) return <span className="muted">—</span>;
  return (
    <ul className="chips" aria-label="Labels">
      {labels.map((l) => (
        <li key={l} className="chip">
          {l}
        </li>
      ))}
    </ul>
  );
}

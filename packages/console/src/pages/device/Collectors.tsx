import type { CollectorReport, CollectorStatus } from '../../api/types';
import { Badge } from '../../components/Badge';
import { formatNumber } from '../../components/format';

const TONE: Record<CollectorStatus, 'ok' | 'warn' | 'danger' | 'neutral'> = {
  ok: 'ok',
  unsupported: 'neutral',
  error: 'danger',
  absent: 'neutral',
};

/** What each of the agent's collectors reported on the last check-in. */
export function Collectors({ collectors }: { collectors: CollectorReport[] }) {
  if (collectors.length === 0) return <p className="muted">No collector reports yet.</p>;
  return (
    <div className="table-wrap">
      <table className="table table--compact">
        <caption className="visually-hidden">Collector reports</caption>
        <thead>
          <tr>
            <th scope="col">Collector</th>
            <th scope="col">Status</th>
            <th scope="col" className="num">Items</th>
          </tr>
        </thead>
        <tbody>
          {collectors.map((c) => (
            <tr key={c.name}>
              <th scope="row" className="mono">
                {c.name}
                {c.message ? <span className="collector-message">{c.message}</span> : null}
              </th>
              <td><Badge tone={TONE[c.status]}>{c.status}</Badge></td>
              <td className="num">{c.count !== undefined ? formatNumber(c.count) : <span className="muted">—</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

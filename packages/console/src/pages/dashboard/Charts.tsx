/**
 * The dashboard's two charts (loaded on demand: recharts is most of the bundle). Each chart is
 * hidden from assistive technology and comes with its text alternative: a caption and a table.
 */
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import type { Dashboard } from '../../api/types';
import { formatNumber } from '../../components/format';

/** Legend words in the text colour (recharts colours them like their series, too faint for some). */
const legendText = (value: string) => <span style={{ color: '#1a2230' }}>{value}</span>;

const COLORS = { needing: '#1d5bb8', critical: '#8b1a1f', high: '#c2410c', medium: '#9a6700', low: '#586273' };

export function TrendChart({ trend }: { trend: Dashboard['trend'] }) {
  const data = trend.map((t) => ({ day: t.day.slice(5), needing: t.needing, ...t.bySeverity }));
  const last = trend[trend.length - 1];
  const first = trend[0];
  return (
    <figure className="chart" data-testid="trend-chart">
      <figcaption className="chart__caption">
        Devices needing patches, last {trend.length || 30} days.
        {first && last ? ` From ${formatNumber(first.needing)} on ${first.day} to ${formatNumber(last.needing)} on ${last.day}.` : ''}
      </figcaption>
      {trend.length === 0 ? <p className="muted">No history recorded yet.</p> : (
        <>
          <div className="chart__plot" aria-hidden="true">
            <ResponsiveContainer width="100%" height={240}>
              <LineChart data={data} accessibilityLayer={false} margin={{ top: 8, right: 16, bottom: 0, left: -8 }}>
                <CartesianGrid stroke="#e3e7ed" vertical={false} />
                <XAxis dataKey="day" tick={{ fontSize: 12, fill: '#586273' }} minTickGap={16} />
                <YAxis allowDecimals={false} tick={{ fontSize: 12, fill: '#586273' }} />
                <Tooltip />
                <Legend wrapperStyle={{ fontSize: 13 }} formatter={legendText} />
                <Line type="monotone" dataKey="needing" name="needing any" stroke={COLORS.needing} strokeWidth={2} dot={data.length < 3} isAnimationActive={false} />
                <Line type="monotone" dataKey="critical" stroke={COLORS.critical} strokeDasharray="6 3" dot={data.length < 3} isAnimationActive={false} />
                <Line type="monotone" dataKey="high" stroke={COLORS.high} strokeDasharray="2 2" dot={data.length < 3} isAnimationActive={false} />
                <Line type="monotone" dataKey="medium" stroke={COLORS.medium} dot={data.length < 3} isAnimationActive={false} />
                <Line type="monotone" dataKey="low" stroke={COLORS.low} strokeDasharray="1 4" dot={data.length < 3} isAnimationActive={false} />
              </LineChart>
            </ResponsiveContainer>
          </div>
          <table className="visually-hidden">
            <caption>Devices needing patches per day</caption>
            <thead>
              <tr>
                <th scope="col">Day</th><th scope="col">Devices</th><th scope="col">Needing any</th>
                <th scope="col">Critical</th><th scope="col">High</th><th scope="col">Medium</th><th scope="col">Low</th>
              </tr>
            </thead>
            <tbody>
              {trend.map((t) => (
                <tr key={t.day}>
                  <th scope="row">{t.day}</th><td>{t.devices}</td><td>{t.needing}</td><td>{t.bySeverity.critical}</td>
                  <td>{t.bySeverity.high}</td><td>{t.bySeverity.medium}</td><td>{t.bySeverity.low}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </figure>
  );
}

const hours = (h: number | null) => (h === null ? '—' : h < 48 ? `${Math.round(h)} h` : `${(h / 24).toFixed(1)} d`);

export function SlaChart({ sla }: { sla: Dashboard['sla'] }) {
  const data = sla.map((s) => ({ severity: s.severity, median: s.medianHours ?? 0, p90: s.p90Hours ?? 0 }));
  return (
    <figure className="chart" data-testid="sla-chart">
      <figcaption className="chart__caption">Time to patch by severity: median and 90th percentile, in hours.</figcaption>
      {sla.every((s) => s.patched === 0) ? <p className="muted">No patch has been installed by a deployment yet.</p> : (
        <>
          <div className="chart__plot" aria-hidden="true">
            <ResponsiveContainer width="100%" height={240}>
              <BarChart data={data} accessibilityLayer={false} margin={{ top: 8, right: 16, bottom: 0, left: -8 }}>
                <CartesianGrid stroke="#e3e7ed" vertical={false} />
                <XAxis dataKey="severity" tick={{ fontSize: 12, fill: '#586273' }} />
                <YAxis tick={{ fontSize: 12, fill: '#586273' }} unit=" h" />
                <Tooltip />
                <Legend wrapperStyle={{ fontSize: 13 }} formatter={legendText} />
                <Bar dataKey="median" name="median hours" fill="#1d5bb8" isAnimationActive={false} />
                <Bar dataKey="p90" name="90th percentile hours" fill="#6f94cc" isAnimationActive={false} />
              </BarChart>
            </ResponsiveContainer>
          </div>
          <table className="visually-hidden">
            <caption>Time to patch by severity</caption>
            <thead>
              <tr><th scope="col">Severity</th><th scope="col">Patched</th><th scope="col">Median</th><th scope="col">90th percentile</th></tr>
            </thead>
            <tbody>
              {sla.map((s) => (
                <tr key={s.severity}>
                  <th scope="row">{s.severity}</th><td>{s.patched}</td><td>{hours(s.medianHours)}</td><td>{hours(s.p90Hours)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </figure>
  );
}

/** Small formatting helpers shared by the pages. Pure functions; no React. */
import type { OsSummary } from '../api/types';

const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

const STEPS: [limitSeconds: number, unit: Intl.RelativeTimeFormatUnit, seconds: number][] = [
  [3600, 'minute', 60],
  [86400, 'hour', 3600],
  [86400 * 30, 'day', 86400],
  [86400 * 365, 'month', 86400 * 30],
  [Infinity, 'year', 86400 * 365],
];

/** "just now", "5 minutes ago", "yesterday", "3 months ago". */
export function formatRelative(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = (t - now) / 1000;
  const abs = Math.abs(diff);
  // Clocks drift: a check-in a few seconds "in the future" is still just now.
  if (abs < 45) return 'just now';
  for (const [limit, unit, seconds] of STEPS) {
    if (abs < limit) return rtf.format(Math.round(diff / seconds), unit);
  }
  return iso;
}

/** The operating system's name as people say it: PRETTY_NAME, else name + version. */
export function osLabel(os: OsSummary | null): string {
  if (!os) return '—';
  if (os.prettyName) return os.prettyName;
  const name = os.name ?? os.distribution ?? os.family;
  return [name, os.version].filter(Boolean).join(' ');
}

export function formatNumber(n: number): string {
  return n.toLocaleString('en');
}

/** "1–50 of 1,234" */
export function rangeLabel(offset: number, count: number, total: number): string {
  if (total === 0 || count === 0) return `0 of ${formatNumber(total)}`;
  return `${formatNumber(offset + 1)}–${formatNumber(offset + count)} of ${formatNumber(total)}`;
}

export function shortHash(hash: string | null, length = 12): string {
  if (!hash) return '—';
  return hash.length > length ? hash.slice(0, length) : hash;
}

/** Reads a 1-based `page` URL parameter as a 0-based offset. */
export function offsetFromPage(page: string | null, pageSize: number): number {
  const n = Number.parseInt(page ?? '', 10);
  return Number.isFinite(n) && n > 1 ? (n - 1) * pageSize : 0;
}

/** The first 8 characters of a server id (the full one goes in a title). */
export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

/** "2026-11-26 14:05" in the browser's zone; '—' for null. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Splits "a, b c" into ['a', 'b', 'c']. */
export function splitList(text: string): string[] {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

import { rangeLabel } from './format';

type Props = {
  label: string;
  offset: number;
  limit: number;
  count: number;
  total: number;
  onOffset: (offset: number) => void;
};

/** "1–50 of 1,234" with Previous / Next. */
export function Pager({ label, offset, limit, count, total, onOffset }: Props) {
  const hasPrev = offset > 0;
  const hasNext = offset + count < total;
  return (
    <nav className="pager" aria-label={label}>
      <p className="pager__range">{rangeLabel(offset, count, total)}</p>
      <div className="pager__buttons">
        <button type="button" className="button button--small" disabled={!hasPrev}
          onClick={() => onOffset(Math.max(0, offset - limit))}>
          <span aria-hidden="true">‹ </span>Previous
        </button>
        <button type="button" className="button button--small" disabled={!hasNext}
          onClick={() => onOffset(offset + limit)}>
          Next<span aria-hidden="true"> ›</span>
        </button>
      </div>
    </nav>
  );
}

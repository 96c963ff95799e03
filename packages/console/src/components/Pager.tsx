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

type EmptyRowProps = { colSpan: number; offset: number; total: number; noMatch: string; onFirstPage: () => void };

/** The one row of a table page with nothing on it: no match, or a page past the end. */
export function EmptyRow({ colSpan, offset, total, noMatch, onFirstPage }: EmptyRowProps) {
  return (
    <tr>
      <td colSpan={colSpan} className="table__empty">
        {offset > 0 && total > 0 ? (
          <>
            Nothing on this page.{' '}
            <button type="button" className="link-button" onClick={onFirstPage}>Go to the first page</button>
          </>
        ) : (
          noMatch
        )}
      </td>
    </tr>
  );
}

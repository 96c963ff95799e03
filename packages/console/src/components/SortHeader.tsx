import type { SortOrder } from '../api/types';

type Props<K extends string> = {
  column: K;
  label: string;
  sort: K;
  order: SortOrder;
  onSort: (column: K) => void;
  className?: string;
};

/** A column header that sorts by its column; the current one carries aria-sort. */
export function SortHeader<K extends string>({ column, label, sort, order, onSort, className }: Props<K>) {
  const active = sort === column;
  const ariaSort = active ? (order === 'asc' ? 'ascending' : 'descending') : undefined;
  return (
    <th scope="col" aria-sort={ariaSort} className={className}>
      <button type="button" className={`sort${active ? ' sort--active' : ''}`} onClick={() => onSort(column)}>
        {label}
        <span className="sort__icon" aria-hidden="true">
          {active ? (order === 'asc' ? '▲' : '▼') : '↕'}
        </span>
      </button>
    </th>
  );
}

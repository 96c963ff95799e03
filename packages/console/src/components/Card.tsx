import type { ReactNode } from 'react';
import { formatNumber } from './format';

/** A progress bar with "done / total" beside it. */
export function Progress({ done, total, label }: { done: number; total: number; label: string }) {
  return (
    <span className="progress">
      <progress max={Math.max(total, 1)} value={done} aria-label={label} />
      <span className="progress__text">{formatNumber(done)} / {formatNumber(total)}</span>
    </span>
  );
}

/** A titled section of a page; `actions` sit beside the title. */
export function Card({ title, id, children, actions, testId }: { title: string; id: string; children: ReactNode; actions?: ReactNode; testId?: string }) {
  return (
    <section className="card card--flush" aria-labelledby={`${id}-title`} data-testid={testId}>
      {actions ? (
        <div className="card__header">
          <h2 id={`${id}-title`} className="card__title">{title}</h2>
          <div className="card__actions">{actions}</div>
        </div>
      ) : <h2 id={`${id}-title`} className="card__title">{title}</h2>}
      {children}
    </section>
  );
}

import { useEffect, useRef, type ReactNode } from 'react';

// The page last focused, so that moving between pages (not the first load, not re-renders)
// puts keyboard and screen-reader focus on the new page's heading.
let lastPage: string | null = null;

export function PageHeading({ page, children }: { page: string; children: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (lastPage !== null && lastPage !== page) ref.current?.focus();
    lastPage = page;
  }, [page]);
  return (
    <h1 ref={ref} tabIndex={-1} className="page-title">
      {children}
    </h1>
  );
}

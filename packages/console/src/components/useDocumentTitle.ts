import { useEffect } from 'react';

/** Sets the tab's title to "<title> · Patchwarden" while the page is shown. */
export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Patchwarden` : 'Patchwarden';
  }, [title]);
}

import { useSyncExternalStore } from 'react';
import { formatRelative } from './format';

// One shared clock for every relative time on the page, ticking while anything shows one.
const TICK_MS = 15_000;
let now = Date.now();
let timer: ReturnType<typeof setInterval> | undefined;
const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  if (timer === undefined) {
    now = Date.now();
    timer = setInterval(() => {
      now = Date.now();
      for (const l of listeners) l();
    }, TICK_MS);
  }
  return () => {
    listeners.delete(listener);
    if (listeners.size === 0 && timer !== undefined) {
      clearInterval(timer);
      timer = undefined;
    }
  };
}

const getNow = (): number => now;

export function useNow(): number {
  return useSyncExternalStore(subscribe, getNow);
}

type Props = { iso: string | null; never?: string };

/** "5 minutes ago", with the exact ISO time as its title and machine-readable datetime. */
export function RelativeTime({ iso, never = 'never' }: Props) {
  const current = useNow();
  if (!iso) return <span className="muted">{never}</span>;
  return (
    <time dateTime={iso} title={iso}>
      {formatRelative(iso, current)}
    </time>
  );
}

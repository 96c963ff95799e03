import { useLiveStatus, type LiveState } from '../live/useLiveEvents';

const TEXT: Record<LiveState, string> = {
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  unavailable: 'Auto-refresh',
};

const TITLE: Record<LiveState, string> = {
  connecting: 'Connecting to the live event stream',
  live: 'Pages update as devices check in and jobs progress',
  reconnecting: 'The live event stream dropped; reconnecting. Pages still refresh every few seconds.',
  unavailable: 'This server has no live event stream; pages refresh every few seconds.',
};

/** A small dot and word in the header: are pages updating live? */
export function LiveIndicator() {
  const { state } = useLiveStatus();
  return (
    <p className={`live live--${state}`} title={TITLE[state]} data-testid="live-indicator" data-state={state}>
      <span className="live__dot" aria-hidden="true" />
      <span role="status">
        <span className="visually-hidden">Updates: </span>
        {TEXT[state]}
      </span>
    </p>
  );
}

import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { ApiRequestError, apiGet, apiSend } from '../../api/client';
import { ErrorNotice } from '../../components/ErrorNotice';
import { formatDateTime } from '../../components/format';
import { RelativeTime } from '../../components/RelativeTime';

type MirrorStatusAnswer = { mode: 'central' } | {
  mode: 'local';
  upstream: string | null;
  site: { name: string; mode: string } | null;
  running: { kind: string; startedAt: string; progress?: unknown } | null;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  lastError: { code: string; message: string } | null;
  serving: { source: string; root: number | null; timestamp: number | null; snapshot: number | null; expires: string | null; targets: number } | null;
};

/** A central server answers { mode: 'central' } (older ones 404 or E_CONFLICT): nothing to show. */
const notLocal = (e: unknown) => e instanceof ApiRequestError && (e.status === 404 || e.code === 'E_CONFLICT');

/** Upstream sync status, on a local patch server only. */
export function MirrorStatus() {
  const queryClient = useQueryClient();
  const q = useQuery({
    queryKey: ['mirror-status'],
    queryFn: ({ signal }) => apiGet<MirrorStatusAnswer>('/mirror/status', { signal }),
    retry: false,
    refetchInterval: (query) => (query.state.data?.mode === 'local' && query.state.data.running ? 3_000 : false),
  });
  const sync = useMutation({
    mutationFn: () => apiSend<unknown>('POST', '/mirror/sync?wait=false'),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ['mirror-status'] }),
  });
  if (q.isPending || (q.isError && notLocal(q.error)) || q.data?.mode === 'central') return null;
  const s = q.data?.mode === 'local' ? q.data : undefined;
  return (
    <section className="card" id="settings-mirror" aria-labelledby="mirror-title" data-testid="settings-mirror">
      <h2 id="mirror-title" className="card__title">Upstream sync</h2>
      {!s ? <ErrorNotice title="Could not load the sync status" error={q.error} onRetry={() => void q.refetch()} /> : (
        <>
          <dl className="facts" aria-live="polite">
            <div className="facts__row"><dt>Upstream</dt><dd className="break">{s.upstream ?? 'offline (imports only)'}</dd></div>
            <div className="facts__row"><dt>Site</dt><dd>{s.site ? `${s.site.name} (${s.site.mode})` : '—'}</dd></div>
            <div className="facts__row"><dt>Now</dt><dd>{s.running ? `${s.running.kind} running since ${formatDateTime(s.running.startedAt)}` : 'idle'}</dd></div>
            <div className="facts__row"><dt>Last success</dt><dd><RelativeTime iso={s.lastSuccessAt} /></dd></div>
            <div className="facts__row"><dt>Last attempt</dt><dd><RelativeTime iso={s.lastAttemptAt} /></dd></div>
            <div className="facts__row"><dt>Serving</dt><dd>{s.serving ? `snapshot ${s.serving.snapshot ?? '—'}, ${s.serving.targets} targets, expires ${formatDateTime(s.serving.expires)}` : 'nothing yet'}</dd></div>
          </dl>
          {s.lastError ? (
            <div className="notice notice--error"><p className="notice__title">Last sync failed <code className="notice__code">{s.lastError.code}</code></p><p>{s.lastError.message}</p></div>
          ) : null}
          {sync.isError ? <ErrorNotice title="The sync did not start" error={sync.error} /> : null}
          {s.upstream ? (
            <button type="button" className="button" disabled={sync.isPending || s.running !== null} onClick={() => sync.mutate()}>Sync now</button>
          ) : null}
        </>
      )}
    </section>
  );
}

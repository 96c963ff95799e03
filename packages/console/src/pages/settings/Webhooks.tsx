import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { apiGet, apiSend } from '../../api/client';
import { WEBHOOK_EVENTS, type Webhook } from '../../api/types';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorNotice, Loading } from '../../components/ErrorNotice';
import { RelativeTime } from '../../components/RelativeTime';
import { OnceSecret } from './OnceSecret';

export function Webhooks() {
  const queryClient = useQueryClient();
  const hooks = useQuery({ queryKey: ['webhooks'], queryFn: ({ signal }) => apiGet<{ items: Webhook[] }>('/webhooks', { signal }) });
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(['deployment.halted', 'job.failed', 'job.needs-attention']);
  const [created, setCreated] = useState<Webhook | null>(null);
  const [toDelete, setToDelete] = useState<Webhook | null>(null);
  const [announce, setAnnounce] = useState('');
  const create = useMutation({
    mutationFn: () => apiSend<Webhook>('POST', '/webhooks', { json: { url: url.trim(), events } }),
    onSuccess: (w) => {
      setCreated(w);
      setUrl('');
      void queryClient.invalidateQueries({ queryKey: ['webhooks'] });
    },
  });
  const remove = useMutation({
    mutationFn: (w: Webhook) => apiSend<Webhook>('DELETE', `/webhooks/${encodeURIComponent(w.id)}`),
    onSuccess: (_r, w) => {
      setToDelete(null);
      setCreated((c) => (c?.id === w.id ? null : c));
      setAnnounce(`Webhook ${w.url} removed.`);
      void queryClient.invalidateQueries({ queryKey: ['webhooks'] });
    },
  });
  const test = useMutation({
    mutationFn: (w: Webhook) => apiSend<{ deliveryId: string }>('POST', `/webhooks/${encodeURIComponent(w.id)}/test`),
    onSuccess: (_r, w) => setAnnounce(`A test delivery to ${w.url} is queued.`),
    onError: () => setAnnounce(''),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate();
  };
  return (
    <section className="card card--flush" id="settings-webhooks" aria-labelledby="webhooks-title" data-testid="settings-webhooks">
      <h2 id="webhooks-title" className="card__title">Webhooks</h2>
      <div aria-live="polite">{announce ? <p className="notice notice--info card__notice">{announce}</p> : null}</div>
      {test.isError ? <ErrorNotice title="The test was not queued" error={test.error} /> : null}
      {created?.secret ? (
        <div className="card__body">
          <OnceSecret label={`Signing secret for ${created.url}`} value={created.secret} onDismiss={() => setCreated(null)} />
        </div>
      ) : null}
      {hooks.isPending ? <Loading label="Loading webhooks…" /> : !hooks.data ? (
        <ErrorNotice title="Could not load webhooks" error={hooks.error} onRetry={() => void hooks.refetch()} />
      ) : (
        <div className="table-wrap">
          <table className="table table--compact">
            <caption className="visually-hidden">Webhooks</caption>
            <thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">Created</th><th scope="col"><span className="visually-hidden">Actions</span></th></tr></thead>
            <tbody>
              {hooks.data.items.map((w) => (
                <tr key={w.id}>
                  <th scope="row" className="mono break">{w.url}</th>
                  <td>{w.events.join(', ')}</td>
                  <td className="nowrap"><RelativeTime iso={w.createdAt} /></td>
                  <td className="cell-actions">
                    <button type="button" className="button button--small" disabled={test.isPending} onClick={() => test.mutate(w)}>
                      Test<span className="visually-hidden"> {w.url}</span>
                    </button>
                    <button type="button" className="button button--small" onClick={() => {
                      remove.reset();
                      setToDelete(w);
                    }}>Delete<span className="visually-hidden"> {w.url}</span></button>
                  </td>
                </tr>
              ))}
              {hooks.data.items.length === 0 ? <tr><td colSpan={4} className="table__empty">No webhooks.</td></tr> : null}
            </tbody>
          </table>
        </div>
      )}
      <form className="card__body form" onSubmit={submit} aria-labelledby="webhook-create-title">
        <h3 id="webhook-create-title" className="subhead">Add a webhook</h3>
        <div className="field">
          <label htmlFor="webhook-url" className="field__label">Webhook URL</label>
          <input id="webhook-url" type="url" className="input" value={url} placeholder="https://example.com/hooks/patchwarden" onChange={(e) => setUrl(e.target.value)} />
        </div>
        <fieldset className="checks">
          <legend className="field__label">Events</legend>
          <ul className="checks__list">
            {WEBHOOK_EVENTS.map((ev) => (
              <li key={ev}>
                <input type="checkbox" id={`webhook-event-${ev}`} checked={events.includes(ev)}
                  onChange={(e) => setEvents(e.target.checked ? [...events, ev] : events.filter((x) => x !== ev))} />
                <label htmlFor={`webhook-event-${ev}`}>{ev}</label>
              </li>
            ))}
          </ul>
        </fieldset>
        {create.isError ? <ErrorNotice title="The webhook was not added" error={create.error} /> : null}
        <button type="submit" className="button button--primary" disabled={create.isPending || url.trim() === '' || events.length === 0}>Add webhook</button>
      </form>
      <ConfirmDialog open={toDelete !== null} title="Remove this webhook?" confirmLabel="Remove webhook" danger busy={remove.isPending}
        onCancel={() => setToDelete(null)} onConfirm={() => toDelete && remove.mutate(toDelete)}>
        <p>Deliveries still pending to <span className="mono break">{toDelete?.url}</span> are dropped.</p>
        {remove.isError ? <ErrorNotice title="The webhook was not removed" error={remove.error} /> : null}
      </ConfirmDialog>
    </section>
  );
}

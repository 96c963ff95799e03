import { ApiRequestError } from '../api/client';

type Props = { error: unknown; title?: string; onRetry?: () => void };

/** An API failure as the server described it: code, message and, when given, a hint. */
export function ErrorNotice({ error, title = 'Something went wrong', onRetry }: Props) {
  const code = error instanceof ApiRequestError ? error.code : 'client_error';
  const message = error instanceof Error ? error.message : String(error);
  const hint = error instanceof ApiRequestError ? error.hint : undefined;
  // A client error (404, 400 …) will fail the same way again: no point offering a retry.
  const retryable = !(error instanceof ApiRequestError && error.status >= 400 && error.status < 500);
  return (
    <div className="notice notice--error" role="alert">
      <p className="notice__title">
        {title} <code className="notice__code">{code}</code>
      </p>
      <p>{message}</p>
      {hint ? <p className="notice__hint">{hint}</p> : null}
      {onRetry && retryable ? (
        <button type="button" className="button button--small" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ label }: { label: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" />
      {label}
    </p>
  );
}

import { useState, type FormEvent } from 'react';
import { ApiRequestError, apiGet, signIn, type SessionNotice } from '../api/client';
import type { Whoami } from '../api/types';
import { ErrorNotice } from '../components/ErrorNotice';
import { useDocumentTitle } from '../components/useDocumentTitle';

type Props = { notice: SessionNotice | null };

/** Asks for an admin token and keeps it only once GET /whoami accepts it. */
export function SignInPage({ notice }: Props) {
  useDocumentTitle('Sign in');
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    const value = token.trim();
    if (!value) {
      setError(new ApiRequestError(0, 'token_required', 'Enter an admin token.'));
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const me = await apiGet<Whoami>('/whoami', { token: value });
      if (me.kind !== 'admin') {
        throw new ApiRequestError(403, 'not_admin', 'This token does not belong to an administrator.',
          'Use an admin token (it begins with pwa_).');
      }
      signIn(value);
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  }

  return (
    <main className="signin" id="main">
      <div className="signin__card">
        <p className="brand brand--large">
          <Logo />
          Patchwarden
        </p>
        <h1 className="signin__title">Sign in</h1>
        {notice && !error ? (
          <p className={`notice notice--${notice.tone}`} role={notice.tone === 'error' ? 'alert' : 'status'}>
            {notice.message}
          </p>
        ) : null}
        {error ? <ErrorNotice title="Sign-in failed" error={error} /> : null}
        <form onSubmit={(e) => void submit(e)} noValidate>
          <label htmlFor="token" className="field__label">Admin token</label>
          <input id="token" name="token" type="password" className="input" value={token} autoComplete="off"
            spellCheck={false} autoFocus aria-describedby="token-help" aria-invalid={error ? true : undefined}
            onChange={(e) => setToken(e.target.value)} />
          <p id="token-help" className="field__help">
            Admin tokens begin with <code>pwa_</code>. The token is kept in this browser tab only.
          </p>
          <button type="submit" className="button button--primary button--block" disabled={busy}>
            {busy ? 'Checking…' : 'Sign in'}
          </button>
        </form>
      </div>
    </main>
  );
}

export function Logo() {
  return (
    <svg className="logo" viewBox="0 0 24 24" width="24" height="24" aria-hidden="true" focusable="false">
      <path d="M12 2 4 5v6c0 5 3.4 9.4 8 11 4.6-1.6 8-6 8-11V5l-8-3Z" fill="currentColor" opacity="0.18" />
      <path d="M12 2 4 5v6c0 5 3.4 9.4 8 11 4.6-1.6 8-6 8-11V5l-8-3Z" fill="none" stroke="currentColor"
        strokeWidth="1.6" strokeLinejoin="round" />
      <path d="m8.5 12 2.5 2.5 4.5-5" fill="none" stroke="currentColor" strokeWidth="1.8"
        strokeLinecap="round" strokeLinejoin="round" />
    </svg>
  );
}

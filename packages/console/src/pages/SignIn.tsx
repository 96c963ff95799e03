import { useState, type FormEvent } from 'react';
import { ApiRequestError, apiGet, signIn, signInWithPassword, type SessionNotice } from '../api/client';
import type { Whoami } from '../api/types';
import { ErrorNotice } from '../components/ErrorNotice';
import { useDocumentTitle } from '../components/useDocumentTitle';

type Props = { notice: SessionNotice | null };

/**
 * Signs in with a user name and password (a session cookie), or with an API token, which is kept
 * only once GET /whoami accepts it.
 */
export function SignInPage({ notice }: Props) {
  useDocumentTitle('Sign in');
  const [mode, setMode] = useState<'password' | 'token'>('password');
  const [name, setName] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  async function submit(e: FormEvent<HTMLFormElement>) {
    e.preventDefault();
    setError(null);
    if (mode === 'password' && (!name.trim() || !password)) {
      setError(new ApiRequestError(0, 'credentials_required', 'Enter your user name and password.'));
      return;
    }
    const value = token.trim();
    if (mode === 'token' && !value) {
      setError(new ApiRequestError(0, 'token_required', 'Enter an API token.'));
      return;
    }
    setBusy(true);
    try {
      if (mode === 'password') {
        await signInWithPassword(name.trim(), password);
      } else {
        await apiGet<Whoami>('/whoami', { token: value });
        signIn(value);
      }
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
          {mode === 'password' ? (
            <>
              <label htmlFor="username" className="field__label">User name</label>
              <input id="username" name="username" type="text" className="input" value={name} autoComplete="username"
                spellCheck={false} autoFocus aria-invalid={error ? true : undefined} onChange={(e) => setName(e.target.value)} />
              <label htmlFor="password" className="field__label">Password</label>
              <input id="password" name="password" type="password" className="input" value={password}
                autoComplete="current-password" aria-describedby="password-help" aria-invalid={error ? true : undefined}
                onChange={(e) => setPassword(e.target.value)} />
              <p id="password-help" className="field__help">
                After 5 wrong passwords in a row the account is locked for 15 minutes.
              </p>
            </>
          ) : (
            <>
              <label htmlFor="token" className="field__label">API token</label>
              <input id="token" name="token" type="password" className="input" value={token} autoComplete="off"
                spellCheck={false} autoFocus aria-describedby="token-help" aria-invalid={error ? true : undefined}
                onChange={(e) => setToken(e.target.value)} />
              <p id="token-help" className="field__help">
                API tokens begin with <code>pwa_</code>. The token is kept in this browser tab only.
              </p>
            </>
          )}
          <button type="submit" className="button button--primary button--block" disabled={busy}>
            {busy ? 'Checking…' : 'Sign in'}
          </button>
          <button type="button" className="link-button signin__switch"
            onClick={() => { setMode(mode === 'password' ? 'token' : 'password'); setError(null); }}>
            {mode === 'password' ? 'Use an API token instead' : 'Use a user name and password'}
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

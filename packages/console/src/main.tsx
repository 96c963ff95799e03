import { MutationCache, QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiRequestError, captureTokenFromFragment, getSession, isUnauthorized, resumeSession, sessionKey, signOut, subscribeSession } from './api/client';
import { App } from './App';
import './styles.css';

// `#token=pwa_…` (a sign-in link) signs in and leaves the URL before anything renders; a link
// pasted into an open tab arrives as a hashchange, handled before the router sees the new hash.
captureTokenFromFragment();
window.addEventListener('hashchange', captureTokenFromFragment);

// Any 401 (token revoked, expired, server reset) goes back to sign-in with the server's reason.
const onAuthError = (error: unknown) => {
  if (isUnauthorized(error)) {
    const { message, hint } = error as ApiRequestError;
    signOut({ tone: 'error', message: `${message} ${hint ?? 'Please sign in again.'}` });
  }
};

const queryClient = new QueryClient({
  queryCache: new QueryCache({ onError: onAuthError }),
  mutationCache: new MutationCache({ onError: onAuthError }),
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      // Client errors (4xx) will not change on a retry; network and server errors might.
      retry: (failures, error) =>
        !(error instanceof ApiRequestError && error.status >= 400 && error.status < 500) && failures < 2,
    },
  },
});

// Nothing fetched with one sign-in may be shown after signing out, or in as someone else.
let lastKey = sessionKey(getSession());
subscribeSession(() => {
  const key = sessionKey(getSession());
  if (key !== lastKey) {
    lastKey = key;
    queryClient.clear();
  }
});

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

// a session cookie survives a reload: ask the server before showing the sign-in page
void resumeSession().finally(() =>
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <App />
      </QueryClientProvider>
    </StrictMode>,
  ),
);

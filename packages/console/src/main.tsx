import { QueryCache, QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiRequestError, captureTokenFromFragment, isUnauthorized, signOut } from './api/client';
import { App } from './App';
import './styles.css';

// `#token=pwa_…` (the link the server prints) signs in and leaves the URL before anything renders.
captureTokenFromFragment();

const queryClient = new QueryClient({
  queryCache: new QueryCache({
    // Any 401 (token revoked, expired, server reset) goes back to sign-in with the server's reason.
    onError: (error) => {
      if (isUnauthorized(error)) {
        signOut({ tone: 'error', message: `Signed out: ${(error as Error).message}` });
      }
    },
  }),
  defaultOptions: {
    queries: {
      staleTime: 5_000,
      // Client errors (4xx) will not change on a retry; network and server errors might.
      retry: (failures, error) =>
        !(error instanceof ApiRequestError && error.status >= 400 && error.status < 500) && failures < 2,
    },
  },
});

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');

createRoot(root).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);

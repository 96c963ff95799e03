import { useQuery } from '@tanstack/react-query';
import { useRef, useSyncExternalStore, type MouseEvent } from 'react';
import { apiGet, getSession, sessionKey, signOut, subscribeSession } from './api/client';
import type { Whoami } from './api/types';
import { LiveIndicator } from './components/LiveIndicator';
import { PageHeading } from './components/PageHeading';
import { useLiveEvents } from './live/useLiveEvents';
import { DashboardPage } from './pages/Dashboard';
import { DeploymentPage } from './pages/Deployment';
import { DeploymentsPage } from './pages/Deployments';
import { DevicePage } from './pages/Device';
import { DevicesPage } from './pages/Devices';
import { NewDeploymentPage } from './pages/NewDeployment';
import { PatchPage } from './pages/Patch';
import { PatchesPage } from './pages/Patches';
import { ReportsPage } from './pages/Reports';
import { SettingsPage } from './pages/Settings';
import { Logo, SignInPage } from './pages/SignIn';
import {
  dashboardPath, deploymentsPath, devicesPath, href, patchesPath, reportsPath, settingsPath, useRoute, type Route,
} from './router';

/** The console: sign-in when there is no token, else the shell around the current page. */
export function App() {
  const session = useSyncExternalStore(subscribeSession, getSession);
  const key = sessionKey(session);
  if (!key) return <SignInPage notice={session.reason} />;
  // A new sign-in starts a fresh shell (main.tsx has emptied the query cache).
  return <Shell key={key} />;
}

function Shell() {
  const route = useRoute();
  useLiveEvents();
  const mainRef = useRef<HTMLElement>(null);
  const whoami = useQuery({
    queryKey: ['whoami'],
    queryFn: ({ signal }) => apiGet<Whoami>('/whoami', { signal }),
    staleTime: 5 * 60_000,
  });

  const skipToMain = (e: MouseEvent<HTMLAnchorElement>) => {
    e.preventDefault();
    mainRef.current?.focus();
  };

  return (
    <div className="shell">
      <a className="skip-link" href="#main" onClick={skipToMain}>Skip to main content</a>
      <header className="shell__header">
        <a className="brand" href={href(dashboardPath)}>
          <Logo />
          Patchwarden
        </a>
        <nav aria-label="Main" className="nav">
          <ul>
            <NavLink path={dashboardPath} label="Dashboard" current={route.name === 'dashboard'} />
            <NavLink path={devicesPath} label="Devices" current={route.name === 'devices' || route.name === 'device'} />
            <NavLink path={patchesPath} label="Patches" current={route.name === 'patches' || route.name === 'patch'} />
            <NavLink path={deploymentsPath} label="Deployments"
              current={route.name === 'deployments' || route.name === 'deployment' || route.name === 'newDeployment'} />
            <NavLink path={reportsPath} label="Reports" current={route.name === 'reports'} />
            <NavLink path={settingsPath} label="Settings" current={route.name === 'settings'} />
          </ul>
        </nav>
        <div className="account">
          <LiveIndicator />
          {whoami.data ? (
            <span className="account__name" title={`Signed in as ${whoami.data.name}`}>
              <span className="visually-hidden">Signed in as </span>
              {whoami.data.user ?? whoami.data.name}
              <span className="account__role"> · {whoami.data.role}</span>
            </span>
          ) : null}
          <button type="button" className="button button--small button--quiet"
            onClick={() => signOut({ tone: 'info', message: 'You have signed out.' })}>
            Sign out
          </button>
        </div>
      </header>
      <main className="shell__main" id="main" ref={mainRef} tabIndex={-1}>
        <CurrentPage route={route} />
      </main>
    </div>
  );
}

function NavLink({ path, label, current }: { path: string; label: string; current: boolean }) {
  return (
    <li>
      <a className="nav__link" href={href(path)} aria-current={current ? 'page' : undefined}>{label}</a>
    </li>
  );
}

function CurrentPage({ route }: { route: Route }) {
  switch (route.name) {
    case 'dashboard':
      return <DashboardPage />;
    case 'patches':
      return <PatchesPage params={route.params} />;
    case 'patch':
      return <PatchPage key={route.id} id={route.id} params={route.params} />;
    case 'deployments':
      return <DeploymentsPage params={route.params} />;
    case 'newDeployment':
      return <NewDeploymentPage params={route.params} />;
    case 'deployment':
      return <DeploymentPage key={route.id} id={route.id} params={route.params} />;
    case 'reports':
      return <ReportsPage params={route.params} />;
    case 'settings':
      return <SettingsPage />;
    case 'devices':
      return <DevicesPage params={route.params} />;
    case 'device':
      return <DevicePage key={route.id} id={route.id} params={route.params} />;
    case 'notFound':
      return (
        <>
          <PageHeading page="notFound">Page not found</PageHeading>
          <p>There is no page at <code>{route.path}</code>. <a href={href(dashboardPath)}>Go to the dashboard</a>.</p>
        </>
      );
  }
}

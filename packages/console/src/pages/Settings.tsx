import { PageHeading } from '../components/PageHeading';
import { useDocumentTitle } from '../components/useDocumentTitle';
import { ApprovalRules } from './settings/ApprovalRules';
import { EnrollmentSecrets } from './settings/EnrollmentSecrets';
import { Groups } from './settings/Groups';
import { MirrorStatus } from './settings/MirrorStatus';
import { Webhooks } from './settings/Webhooks';
import { Windows } from './settings/Windows';

export function SettingsPage() {
  useDocumentTitle('Settings');
  return (
    <>
      <div className="page-header">
        <PageHeading page="settings">Settings</PageHeading>
      </div>
      <nav aria-label="Settings sections" className="section-nav">
        <ul>
          <li><a href="#/settings" onClick={jump('settings-groups')}>Groups</a></li>
          <li><a href="#/settings" onClick={jump('settings-windows')}>Maintenance windows</a></li>
          <li><a href="#/settings" onClick={jump('settings-rules')}>Approval rules</a></li>
          <li><a href="#/settings" onClick={jump('settings-secrets')}>Enrollment secrets</a></li>
          <li><a href="#/settings" onClick={jump('settings-webhooks')}>Webhooks</a></li>
        </ul>
      </nav>
      <div className="stack">
        <Groups />
        <Windows />
        <ApprovalRules />
        <EnrollmentSecrets />
        <Webhooks />
        <MirrorStatus />
      </div>
    </>
  );
}

function jump(id: string) {
  return (e: { preventDefault: () => void }) => {
    e.preventDefault();
    const el = document.getElementById(id);
    if (!el) return;
    el.scrollIntoView({ block: 'start' });
    const h = el.querySelector<HTMLElement>('h2');
    if (h) {
      h.tabIndex = -1;
      h.focus({ preventScroll: true });
    }
  };
}

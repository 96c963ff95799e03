import { useState } from 'react';

/** A secret the server shows once: displayed with a copy button and a warning. */
export function OnceSecret({ label, value, onDismiss }: { label: string; value: string; onDismiss: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <div className="notice notice--info once-secret" role="status" data-testid="once-secret">
      <p className="notice__title">{label}</p>
      <p>Copy it now: it is shown only this once.</p>
      <p><code className="command once-secret__value">{value}</code></p>
      <div className="form__actions">
        <button type="button" className="button button--small" onClick={() => {
          void navigator.clipboard?.writeText(value).then(() => setCopied(true), () => setCopied(false));
        }}>{copied ? 'Copied' : 'Copy to clipboard'}</button>
        <button type="button" className="button button--small" onClick={onDismiss}>I have saved it</button>
      </div>
    </div>
  );
}

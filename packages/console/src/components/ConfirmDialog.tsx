import { useEffect, useId, useRef, type ReactNode } from 'react';

type Props = {
  open: boolean;
  title: string;
  confirmLabel: string;
  danger?: boolean;
  busy?: boolean;
  onConfirm: () => void;
  onCancel: () => void;
  children?: ReactNode;
};

/**
 * A modal confirmation on the native <dialog>: focus moves into it and is kept there, Escape
 * cancels, and focus returns to the button that opened it when it closes.
 */
export function ConfirmDialog({ open, title, confirmLabel, danger = false, busy = false, onConfirm, onCancel, children }: Props) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const returnTo = useRef<Element | null>(null);

  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      returnTo.current = document.activeElement;
      d.showModal();
    } else if (!open && d.open) {
      d.close();
      // back to the button that opened it; if that is gone (an Undo button after the undo), the page heading
      const back = returnTo.current;
      const toHeading = () => document.querySelector<HTMLElement>('main h1')?.focus();
      if (back instanceof HTMLElement && back.isConnected) back.focus();
      else toHeading();
      // the list refetched after the action may remove that button a moment later
      setTimeout(() => {
        if (document.activeElement === document.body || document.activeElement === null) toHeading();
      }, 1000);
    }
  }, [open]);

  return (
    <dialog ref={ref} className="dialog" aria-labelledby={titleId}
      onCancel={(e) => {
        e.preventDefault();
        if (!busy) onCancel();
      }}>
      <form method="dialog" onSubmit={(e) => {
        e.preventDefault();
        onConfirm();
      }}>
        <h2 id={titleId} className="dialog__title">{title}</h2>
        <div className="dialog__body">{children}</div>
        <div className="dialog__actions">
          <button type="button" className="button" onClick={onCancel} disabled={busy}>Cancel</button>
          <button type="submit" className={`button ${danger ? 'button--danger' : 'button--primary'}`} disabled={busy}>
            {busy ? 'Working…' : confirmLabel}
          </button>
        </div>
      </form>
    </dialog>
  );
}

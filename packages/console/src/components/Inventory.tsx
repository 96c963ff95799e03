import type { DeviceSummary } from '../api/types';
import { formatNumber } from './format';

/**
 * A device's package count, or why there is none: a device whose package manager is not
 * supported shows "not supported", never a misleading 0.
 */
export function PackageCount({ device }: { device: Pick<DeviceSummary, 'packageCount' | 'inventory'> }) {
  const { status, message } = device.inventory;
  switch (status) {
    case 'ok':
      return <span className="num">{formatNumber(device.packageCount)}</span>;
    case 'unsupported':
      return <Explained text="not supported" message={message ?? 'This package manager is not supported yet.'} />;
    case 'error':
      return <Explained text="collection failed" message={message ?? 'The agent could not read the packages.'} tone="danger" />;
    case 'absent':
      return <Explained text="no package manager" message={message ?? 'No supported package manager was found.'} />;
    case 'none':
      return <Explained text="not reported yet" message={message ?? 'The agent has not sent an inventory yet.'} />;
  }
}

function Explained({ text, message, tone }: { text: string; message: string; tone?: 'danger' }) {
  return (
    <span className={`explained${tone ? ` explained--${tone}` : ''}`} title={message}>
      {text}
      <span className="visually-hidden">: {message}</span>
    </span>
  );
}

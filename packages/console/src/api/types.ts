/**
 * The JSON shapes of the server's API: the same types the server builds its answers with,
 * imported as types only (nothing of core runs in the browser).
 */
export type {
  CollectorReport,
  DeviceDetail,
  DeviceSort,
  DeviceStatus,
  DeviceSummary,
  InventoryStatus,
  OsFacts as OsSummary,
  PackageFact,
  Page,
  SortOrder,
  Whoami,
} from '@patchwarden/core';

import type { CollectorReport } from '@patchwarden/core';

export type CollectorStatus = CollectorReport['status'];

export type ApiError = { error: { code: string; message: string; hint?: string } };

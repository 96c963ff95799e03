/**
 * One error type for the whole product. Every code maps to one HTTP status and one CLI exit
 * code, so the API, the CLI and the console speak of a failure the same way.
 */
export const ERROR_CODES = {
  E_BAD_REQUEST: { http: 400, exit: 2 },
  E_VALIDATION: { http: 400, exit: 2 },
  E_PAYLOAD_TOO_LARGE: { http: 413, exit: 2 },
  E_UNSUPPORTED_MEDIA: { http: 415, exit: 2 },
  E_UNAUTHENTICATED: { http: 401, exit: 3 },
  E_FORBIDDEN: { http: 403, exit: 3 },
  E_DEVICE_REVOKED: { http: 403, exit: 3 },
  /** a second enrollment of a known machine, waiting for an administrator's approval */
  E_DEVICE_PENDING: { http: 403, exit: 3 },
  /** a device with a key pair sent a request without its signature, or with a wrong one */
  E_REQUEST_SIGNATURE: { http: 401, exit: 3 },
  /** the device's clock is too far from the server's; details.serverTime says the server's */
  E_CLOCK_SKEW: { http: 401, exit: 3 },
  /** a signed request seen before */
  E_REPLAYED: { http: 401, exit: 3 },
  E_ENROLLMENT_SECRET_INVALID: { http: 401, exit: 3 },
  E_NOT_FOUND: { http: 404, exit: 4 },
  E_CONFLICT: { http: 409, exit: 5 },
  E_INVENTORY_BASE_UNKNOWN: { http: 409, exit: 5 },
  E_INVENTORY_HASH_MISMATCH: { http: 422, exit: 5 },
  E_VERSION_INVALID: { http: 400, exit: 2 },
  E_CONFIG_INVALID: { http: 500, exit: 2 },
  E_NOT_ENROLLED: { http: 400, exit: 6 },
  E_SERVER_UNREACHABLE: { http: 502, exit: 7 },
  E_DATABASE: { http: 503, exit: 8 },
  E_RATE_LIMITED: { http: 429, exit: 9 },
  /** a dependency graph with a cycle (the chain is in the message and details) */
  E_DEPENDENCY_CYCLE: { http: 422, exit: 5 },
  /** patches that conflict with each other or with what the device has */
  E_PATCH_CONFLICT: { http: 409, exit: 5 },
  /** a bundle that is malformed, truncated, oversized or holds unsafe entries */
  E_BUNDLE_INVALID: { http: 422, exit: 10 },
  /** a signature that does not verify, or too few signatures from trusted keys */
  E_SIGNATURE_INVALID: { http: 422, exit: 10 },
  /** a hash or length that does not match what signed metadata states */
  E_DIGEST_MISMATCH: { http: 422, exit: 10 },
  /** signed metadata past its expiry */
  E_METADATA_EXPIRED: { http: 422, exit: 10 },
  /** signed metadata older than what was already trusted (a rollback or replay) */
  E_METADATA_ROLLBACK: { http: 422, exit: 10 },
  /** signed metadata that is malformed or breaks the TUF rules (paths, roles, versions) */
  E_METADATA_INVALID: { http: 422, exit: 10 },
  /** a key file that cannot be used (unreadable, wrong type, not a private key) */
  E_KEY_INVALID: { http: 400, exit: 10 },
  /** an advisory or feed record that cannot be read (reported with its position) */
  E_FEED_INVALID: { http: 422, exit: 2 },
  /** a backup archive that is truncated, tampered with, unsafe, or from a newer schema */
  E_BACKUP_INVALID: { http: 422, exit: 10 },
  /** no space left on the device's (or server's) disk for a file being written (ENOSPC) */
  E_DISK_FULL: { http: 507, exit: 11 },
  E_INTERNAL: { http: 500, exit: 1 },
} as const satisfies Record<string, { http: number; exit: number }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; hint?: string; details?: unknown };
}

export class PatchwardenError extends Error {
  readonly code: ErrorCode;
  /** What the user can do about it; printed after the message by the CLI, sent by the API. */
  readonly hint?: string;
  readonly details?: unknown;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; details?: unknown; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PatchwardenError';
    this.code = code;
    if (opts.hint !== undefined) this.hint = opts.hint;
    if (opts.details !== undefined) this.details = opts.details;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  toBody(): ErrorBody {
    const error: ErrorBody['error'] = { code: this.code, message: this.message };
    if (this.hint !== undefined) error.hint = this.hint;
    if (this.details !== undefined) error.details = this.details;
    return { error };
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** Rebuilds an error from an API error body (client side). */
export function errorFromBody(status: number, body: unknown): PatchwardenError {
  const e = (body as Partial<ErrorBody> | undefined)?.error;
  if (e && isErrorCode(e.code) && typeof e.message === 'string') {
    const opts: { hint?: string; details?: unknown } = {};
    if (typeof e.hint === 'string') opts.hint = e.hint;
    if (e.details !== undefined) opts.details = e.details;
    return new PatchwardenError(e.code, e.message, opts);
  }
  return new PatchwardenError('E_INTERNAL', `the server answered HTTP ${status} without an error body`);
}

/**
 * Dapr's HTTP error replies: `{errorCode, message}` with Dapr's codes and statuses
 * (dapr/dapr pkg/messages). State errors from the building block are mapped here, in one place.
 */
import type { ServerResponse } from 'node:http';
import { StateError } from '../../components/state/errors.js';

export const DAPR_ERRORS = {
  ERR_MALFORMED_REQUEST: 400,
  ERR_HEALTH_NOT_READY: 500,
  ERR_STATE_STORES_NOT_CONFIGURED: 500,
  ERR_STATE_STORE_NOT_FOUND: 400,
  ERR_STATE_GET: 500,
  ERR_STATE_SAVE: 500,
  ERR_STATE_DELETE: 500,
  ERR_STATE_BULK_GET: 500,
  ERR_STATE_TRANSACTION: 500,
  ERR_STATE_STORE_NOT_SUPPORTED: 500,
  ERR_NOT_SUPPORTED_STATE_OPERATION: 400,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_BODY_TOO_LARGE: 413,
} as const;

export type DaprErrorCode = keyof typeof DAPR_ERRORS;

export class DaprHttpError extends Error {
  constructor(
    readonly errorCode: DaprErrorCode,
    message: string,
    readonly status: number = DAPR_ERRORS[errorCode],
  ) {
    super(message);
    this.name = 'DaprHttpError';
  }
}

/**
 * A state error during `code`'s operation: an etag mismatch is 409, an invalid etag or request
 * 400, an unsupported feature 500 (Dapr's choice), a backend failure 500 with the reason.
 */
export function stateFailure(code: DaprErrorCode, what: string, e: unknown): DaprHttpError {
  if (e instanceof DaprHttpError) return e;
  const reason = (e as Error)?.message ?? String(e);
  if (e instanceof StateError) {
    const status = e.kind === 'etag-mismatch' ? 409 : e.kind === 'etag-invalid' || e.kind === 'bad-request' ? 400 : 500;
    return new DaprHttpError(code, `${what}: ${reason}`, status);
  }
  return new DaprHttpError(code, `${what}: ${reason}`, 500);
}

export function sendError(res: ServerResponse, e: DaprHttpError): void {
  const body = JSON.stringify({ errorCode: e.errorCode, message: e.message });
  res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Dapr's HTTP error replies: `{errorCode, message}` with Dapr's codes and statuses
 * (dapr/dapr pkg/messages). State errors from the building block are mapped here, in one place.
 */
import type { ServerResponse } from 'node:http';
import type { ComponentsOf } from '../../components/manager.js';
import { ComponentError, type ComponentErrorKind } from '../../components/errors.js';
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
  ERR_INTERNAL: 500,
  ERR_PUBSUB_NOT_CONFIGURED: 400,
  ERR_PUBSUB_EMPTY: 404,
  ERR_PUBSUB_NOT_FOUND: 404,
  ERR_TOPIC_NAME_EMPTY: 404,
  ERR_PUBSUB_PUBLISH_MESSAGE: 500,
  ERR_PUBSUB_CLOUD_EVENTS_SER: 400,
  ERR_PUBSUB_EVENTS_SER: 400,
  ERR_CONFIGURATION_STORE_NOT_CONFIGURED: 500,
  ERR_CONFIGURATION_STORE_NOT_FOUND: 400,
  ERR_CONFIGURATION_GET: 500,
  ERR_CONFIGURATION_SUBSCRIBE: 500,
  ERR_CONFIGURATION_UNSUBSCRIBE: 500,
  ERR_LOCK_STORE_NOT_CONFIGURED: 500,
  ERR_LOCK_STORE_NOT_FOUND: 400,
  ERR_TRY_LOCK: 500,
  ERR_UNLOCK: 500,
  ERR_SECRET_STORES_NOT_CONFIGURED: 500,
  /** Dapr answers 401 for an unknown secret store. */
  ERR_SECRET_STORE_NOT_FOUND: 401,
  ERR_SECRET_GET: 500,
  ERR_DIRECT_INVOKE: 500,
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

/** The one mapping of ComponentError kinds to HTTP statuses (src/components/errors.ts). */
const KIND_STATUS: Record<ComponentErrorKind, number> = { 'bad-request': 400, 'not-found': 404, conflict: 409, unsupported: 501, backend: 500 };

/**
 * A building-block error during `code`'s operation: the status follows the error's kind,
 * except where Dapr answers otherwise for that code (`statusOf` overrides, e.g. a missing
 * secret is ERR_SECRET_GET 500 in Dapr). Anything that is not a ComponentError is a 500.
 */
export function componentFailure(code: DaprErrorCode, what: string, e: unknown, statusOf: Partial<Record<ComponentErrorKind, number>> = {}): DaprHttpError {
  if (e instanceof DaprHttpError) return e;
  const reason = (e as Error)?.message ?? String(e);
  const status = e instanceof ComponentError ? (statusOf[e.kind] ?? KIND_STATUS[e.kind]) : 500;
  return new DaprHttpError(code, `${what}: ${reason}`, status);
}

export function malformed(reason: string): DaprHttpError {
  return new DaprHttpError('ERR_MALFORMED_REQUEST', `failed deserializing HTTP body: ${reason}`);
}

export function sendError(res: ServerResponse, e: DaprHttpError): void {
  const body = JSON.stringify({ errorCode: e.errorCode, message: e.message });
  res.writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** How one block's finder answers, in Dapr's words (codes and messages differ per block). */
export interface FinderErrors {
  readonly label: string;
  readonly notConfigured: readonly [DaprErrorCode, string];
  readonly notFound: DaprErrorCode;
  readonly notFoundMessage: (name: string) => string;
  /** A component configured but not created yet (its secretKeyRef could not be read): 500 with the reason. */
  readonly notReady: DaprErrorCode;
}

/** The component `name` of a block: Dapr's errors when none is configured, it is unknown, or it cannot serve yet. */
export function findComponent<T>(view: ComponentsOf<T>, name: string, e: FinderErrors): T {
  const c = view.get(name);
  if (c) return c;
  if (view.names().length === 0) throw new DaprHttpError(e.notConfigured[0], e.notConfigured[1]);
  const why = view.notReady(name);
  if (why !== undefined) throw new DaprHttpError(e.notReady, `${e.label} ${name} is not ready: ${why}`, 500);
  throw new DaprHttpError(e.notFound, e.notFoundMessage(name));
}

/**
 * gRPC statuses of the Layotto front end, mapped in one place from the building blocks' typed
 * errors (Layotto's and Dapr's choices, pkg/messages and wrapDaprComponentError):
 *
 *   unknown store, empty / malformed field, invalid etag  → INVALID_ARGUMENT (naming it)
 *   no store of that block configured                     → FAILED_PRECONDITION
 *   etag mismatch, first-write on an existing key         → ABORTED
 *   missing secret, unknown app id                        → NOT_FOUND
 *   optional feature / RPC not available                  → UNIMPLEMENTED
 *   backend down / failed                                 → UNAVAILABLE with the reason
 *
 * Layotto answers INTERNAL for a failed backend; UNAVAILABLE is used here, as the block errors
 * (src/components/errors.ts) define it: the backend could not be reached or did not confirm, so
 * nothing was acknowledged and a retry is the right reaction. Anything else is INTERNAL.
 */
import { ComponentError, type ComponentErrorKind } from '../../components/errors.js';
import { StateError, type StateErrorKind } from '../../components/state/errors.js';

/** The gRPC status codes (fixed by the gRPC spec; kept here so grpc-js loads lazily). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

export type CodeValue = (typeof Code)[keyof typeof Code];

/** A failure with its gRPC status: what a handler throws to answer with that code. */
export class GrpcError extends Error {
  constructor(
    readonly code: CodeValue,
    message: string,
    readonly trailers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = 'GrpcError';
  }
}

export const invalid = (message: string): GrpcError => new GrpcError(Code.INVALID_ARGUMENT, message);

const STATE_CODES: Record<StateErrorKind, CodeValue> = {
  'etag-mismatch': Code.ABORTED,
  'etag-invalid': Code.INVALID_ARGUMENT,
  'bad-request': Code.INVALID_ARGUMENT,
  unsupported: Code.UNIMPLEMENTED,
  backend: Code.UNAVAILABLE,
};

const COMPONENT_CODES: Record<ComponentErrorKind, CodeValue> = {
  'bad-request': Code.INVALID_ARGUMENT,
  'not-found': Code.NOT_FOUND,
  conflict: Code.ABORTED,
  unsupported: Code.UNIMPLEMENTED,
  backend: Code.UNAVAILABLE,
};

/** The status for `e`; `what` (Layotto's wording: "failed saving state in state store x") prefixes the reason. */
export function toGrpcError(e: unknown, what?: string): GrpcError {
  if (e instanceof GrpcError) return e;
  const reason = e instanceof Error ? e.message : String(e);
  const message = what ? `${what}: ${reason}` : reason;
  if (e instanceof StateError) return new GrpcError(STATE_CODES[e.kind], message);
  if (e instanceof ComponentError) return new GrpcError(COMPONENT_CODES[e.kind], message);
  return new GrpcError(Code.INTERNAL, message);
}

/** Runs `fn`; a failure becomes the status for it, prefixed with `what`. */
export async function wrap<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw toGrpcError(e, what);
  }
}

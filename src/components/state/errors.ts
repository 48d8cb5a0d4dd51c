/**
 * Typed state store errors. The front ends map them to Dapr's HTTP statuses (409 for a
 * mismatch, 400 for an invalid etag or request, 500 for a backend failure) and gRPC codes.
 */

export type StateErrorKind = 'etag-mismatch' | 'etag-invalid' | 'bad-request' | 'unsupported' | 'backend';

export class StateError extends Error {
  readonly kind: StateErrorKind;
  constructor(kind: StateErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.kind = kind;
    this.name = 'StateError';
  }
}

/** The stored etag differs from the one given, or first-write found the key already there. */
export class ETagMismatchError extends StateError {
  constructor(key: string, detail = 'possible etag mismatch') {
    super('etag-mismatch', `${detail} for key ${key}`);
    this.name = 'ETagMismatchError';
  }
}

/** The etag is not one this store could have produced. */
export class ETagInvalidError extends StateError {
  constructor(key: string, etag: string) {
    super('etag-invalid', `invalid etag ${JSON.stringify(etag)} for key ${key}`);
    this.name = 'ETagInvalidError';
  }
}

/** Empty key, bad ttlInSeconds, unknown operation, ... */
export class StateRequestError extends StateError {
  constructor(message: string) {
    super('bad-request', message);
    this.name = 'StateRequestError';
  }
}

/** The store lacks the optional feature the call needs. */
export class StateUnsupportedError extends StateError {
  constructor(message: string) {
    super('unsupported', message);
    this.name = 'StateUnsupportedError';
  }
}

/** The backend failed (down, timeout, protocol). Nothing is acknowledged as stored. */
export class StateBackendError extends StateError {
  constructor(message: string, cause?: unknown) {
    super('backend', message, { cause });
    this.name = 'StateBackendError';
  }
}

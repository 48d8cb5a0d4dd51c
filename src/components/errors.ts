/**
 * Typed errors shared by the building blocks other than state (state keeps its own, older,
 * classes). Every front end maps `kind` in one place: bad-request → 400 / INVALID_ARGUMENT,
 * not-found → 404 / NOT_FOUND, conflict → 409 / ABORTED (or FAILED_PRECONDITION),
 * unsupported → 501 / UNIMPLEMENTED, backend → 500 / UNAVAILABLE (with the reason; nothing was
 * acknowledged).
 */
export type ComponentErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'unsupported' | 'backend';

export class ComponentError extends Error {
  constructor(
    readonly kind: ComponentErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ComponentError';
  }
}

/** The caller sent something the block cannot accept (empty key, bad expiry, ...). */
export class ComponentRequestError extends ComponentError {
  constructor(message: string) {
    super('bad-request', message);
    this.name = 'ComponentRequestError';
  }
}

/** The backend failed (down, timeout, protocol error). */
export class ComponentBackendError extends ComponentError {
  constructor(message: string, cause?: unknown) {
    super('backend', message, { cause });
    this.name = 'ComponentBackendError';
  }
}

/** The backend lacks the optional operation (a read-only configuration store asked to save). */
export class ComponentUnsupportedError extends ComponentError {
  constructor(message: string) {
    super('unsupported', message);
    this.name = 'ComponentUnsupportedError';
  }
}

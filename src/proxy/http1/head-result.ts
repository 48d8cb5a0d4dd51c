/**
 * What the HTTP/1.1 head parsers return. Errors are data, not exceptions: the caller maps `code`
 * to a local reply through the error catalog (`src/errors.ts`) and logs `reason`.
 */
import type { ErrorCode } from '../../errors.js';

/** Codes a request head can fail with (400, 431, 501). */
export type RequestHeadErrorCode = 'CAPA_ERR_BAD_REQUEST' | 'CAPA_ERR_HEADERS_TOO_LARGE' | 'CAPA_ERR_NOT_IMPLEMENTED';

/** Every response head error is the upstream's fault (502, flag UPE). */
export type ResponseHeadErrorCode = 'CAPA_ERR_UPSTREAM_PROTOCOL';

export interface HeadIncomplete {
  readonly kind: 'incomplete';
}

export interface HeadOk<T> {
  readonly kind: 'ok';
  readonly head: T;
  /** Bytes from `start`, including skipped leading CRLFs and the final CRLFCRLF. */
  readonly consumed: number;
}

export interface HeadError<C extends ErrorCode> {
  readonly kind: 'error';
  readonly code: C;
  /** Human-readable cause, e.g. "duplicate Content-Length header". */
  readonly reason: string;
}

export type HeadResult<T, C extends ErrorCode = RequestHeadErrorCode> = HeadIncomplete | HeadOk<T> | HeadError<C>;

/** Shared, frozen: an incomplete head allocates nothing. */
export const INCOMPLETE: HeadIncomplete = Object.freeze({ kind: 'incomplete' });

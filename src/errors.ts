/**
 * The one error catalog. Every error that can end a request locally has a stable code, an HTTP
 * status and an Envoy response flag; `localReplyFor()` is the single place that maps them.
 * Codes are never reused; the README lists every one (a test checks it).
 */

export interface ErrorSpec {
  readonly status: number;
  /** Envoy response flag (short form) recorded in metrics and the access log; '' when none. */
  readonly flag: string;
  /** gRPC status used when the request was gRPC. */
  readonly grpcStatus: number;
  readonly summary: string;
}

export const ERROR_CATALOG = {
  CAPA_ERR_CONFIG: { status: 500, flag: '', grpcStatus: 13, summary: 'configuration is invalid' },
  CAPA_ERR_NO_ROUTE: { status: 404, flag: 'NR', grpcStatus: 12, summary: 'no route matched the request' },
  CAPA_ERR_NO_CLUSTER: { status: 503, flag: 'NC', grpcStatus: 14, summary: 'the route names a cluster that does not exist' },
  CAPA_ERR_NO_HEALTHY_UPSTREAM: { status: 503, flag: 'UH', grpcStatus: 14, summary: 'no healthy endpoint in the cluster' },
  CAPA_ERR_UPSTREAM_CONNECT: { status: 503, flag: 'UF', grpcStatus: 14, summary: 'connecting to the upstream failed' },
  CAPA_ERR_UPSTREAM_RESET: { status: 502, flag: 'UC', grpcStatus: 14, summary: 'the upstream closed or reset the connection before a complete response' },
  CAPA_ERR_UPSTREAM_PROTOCOL: { status: 502, flag: 'UPE', grpcStatus: 13, summary: 'the upstream sent a malformed response' },
  CAPA_ERR_UPSTREAM_TIMEOUT: { status: 504, flag: 'UT', grpcStatus: 4, summary: 'the upstream did not answer within the route timeout' },
  CAPA_ERR_UPSTREAM_OVERFLOW: { status: 503, flag: 'UO', grpcStatus: 14, summary: 'the cluster connection pool is full' },
  CAPA_ERR_BAD_REQUEST: { status: 400, flag: 'DPE', grpcStatus: 3, summary: 'the request is malformed' },
  CAPA_ERR_HEADERS_TOO_LARGE: { status: 431, flag: 'DPE', grpcStatus: 3, summary: 'the request head is larger than the listener allows' },
  CAPA_ERR_REQUEST_TIMEOUT: { status: 408, flag: 'DT', grpcStatus: 4, summary: 'the request was not received in time' },
  CAPA_ERR_NOT_IMPLEMENTED: { status: 501, flag: 'DPE', grpcStatus: 12, summary: 'the request uses a feature the proxy does not support' },
  CAPA_ERR_FILTER_FAILED: { status: 500, flag: 'FF', grpcStatus: 13, summary: 'a filter failed while handling the request' },
  CAPA_ERR_DOWNSTREAM_RESET: { status: 499, flag: 'DC', grpcStatus: 1, summary: 'the downstream closed the connection before the response completed' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOG;

export class CapaError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'CapaError';
  }
  get spec(): ErrorSpec {
    return ERROR_CATALOG[this.code];
  }
}

/** A configuration file (YAML, policy, bootstrap) was rejected; `details` are `file:line:col key: reason` lines. */
export class ConfigError extends CapaError {
  readonly details: readonly string[];
  constructor(message: string, details: readonly string[] = []) {
    super('CAPA_ERR_CONFIG', details.length ? `${message}\n  ${details.join('\n  ')}` : message);
    this.details = details;
    this.name = 'ConfigError';
  }
}

export interface LocalReply {
  status: number;
  flag: string;
  grpcStatus: number;
  body: string;
  code: ErrorCode;
}

/** The single mapping from an error to what the downstream sees. Unknown errors are a 500. */
export function localReplyFor(err: unknown): LocalReply {
  if (err instanceof CapaError) {
    const s = err.spec;
    return { status: s.status, flag: s.flag, grpcStatus: s.grpcStatus, body: `${err.message}\n`, code: err.code };
  }
  const s = ERROR_CATALOG.CAPA_ERR_FILTER_FAILED;
  return { status: 500, flag: s.flag, grpcStatus: s.grpcStatus, body: 'internal error while handling the request\n', code: 'CAPA_ERR_FILTER_FAILED' };
}

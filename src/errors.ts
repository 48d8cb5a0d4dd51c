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
  /** Envoy RESPONSE_CODE_DETAILS for the access log (e.g. upstream_response_timeout). */
  readonly details: string;
  readonly summary: string;
}

export const ERROR_CATALOG = {
  CAPA_ERR_CONFIG: { status: 500, flag: '', grpcStatus: 13, details: 'capa_err_config', summary: 'configuration is invalid' },
  CAPA_ERR_NO_ROUTE: { status: 404, flag: 'NR', grpcStatus: 12, details: 'route_not_found', summary: 'no route matched the request' },
  CAPA_ERR_NO_CLUSTER: { status: 503, flag: 'NC', grpcStatus: 14, details: 'cluster_not_found', summary: 'the route names a cluster that does not exist' },
  CAPA_ERR_NO_HEALTHY_UPSTREAM: { status: 503, flag: 'UH', grpcStatus: 14, details: 'no_healthy_upstream', summary: 'no healthy endpoint in the cluster' },
  CAPA_ERR_UPSTREAM_CONNECT: { status: 503, flag: 'UF', grpcStatus: 14, details: 'upstream_reset_before_response_started{connection_failure}', summary: 'connecting to the upstream failed' },
  CAPA_ERR_UPSTREAM_RESET: { status: 502, flag: 'UC', grpcStatus: 14, details: 'upstream_reset_before_response_started{remote_reset}', summary: 'the upstream closed or reset the connection before a complete response' },
  CAPA_ERR_UPSTREAM_PROTOCOL: { status: 502, flag: 'UPE', grpcStatus: 13, details: 'capa_err_upstream_protocol', summary: 'the upstream sent a malformed response' },
  CAPA_ERR_UPSTREAM_TIMEOUT: { status: 504, flag: 'UT', grpcStatus: 4, details: 'upstream_response_timeout', summary: 'the upstream did not answer within the route timeout' },
  CAPA_ERR_UPSTREAM_OVERFLOW: { status: 503, flag: 'UO', grpcStatus: 14, details: 'upstream_reset_before_response_started{overflow}', summary: 'the cluster connection pool is full' },
  CAPA_ERR_BAD_REQUEST: { status: 400, flag: 'DPE', grpcStatus: 3, details: 'capa_err_bad_request', summary: 'the request is malformed' },
  CAPA_ERR_HEADERS_TOO_LARGE: { status: 431, flag: 'DPE', grpcStatus: 3, details: 'capa_err_headers_too_large', summary: 'the request head is larger than the listener allows' },
  CAPA_ERR_REQUEST_TIMEOUT: { status: 408, flag: 'DT', grpcStatus: 4, details: 'request_overall_timeout', summary: 'the request was not received in time' },
  CAPA_ERR_NOT_IMPLEMENTED: { status: 501, flag: 'DPE', grpcStatus: 12, details: 'capa_err_not_implemented', summary: 'the request uses a feature the proxy does not support' },
  CAPA_ERR_FILTER_FAILED: { status: 500, flag: 'FF', grpcStatus: 13, details: 'filter_failed', summary: 'a filter failed while handling the request' },
  CAPA_ERR_DOWNSTREAM_RESET: { status: 499, flag: 'DC', grpcStatus: 1, details: 'capa_err_downstream_reset', summary: 'the downstream closed the connection before the response completed' },
  CAPA_ERR_DNS_RESOLUTION: { status: 503, flag: 'DF', grpcStatus: 14, details: 'dns_resolution_failure', summary: 'the dynamic forward proxy could not resolve the host name' },
  /** Envoy sets no response flag for this local reply (proxy_filter.cc), so neither do we. */
  CAPA_ERR_DNS_CACHE_OVERFLOW: { status: 503, flag: '', grpcStatus: 14, details: 'dns_cache_overflow', summary: 'the DNS cache holds maxHosts names; a new one is refused' },
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
  details: string;
}

/** The single mapping from an error to what the downstream sees. Unknown errors are a 500. */
export function localReplyFor(err: unknown): LocalReply {
  if (err instanceof CapaError) {
    const s = err.spec;
    return { status: s.status, flag: s.flag, grpcStatus: s.grpcStatus, body: `${err.message}\n`, code: err.code, details: s.details };
  }
  const s = ERROR_CATALOG.CAPA_ERR_FILTER_FAILED;
  return { status: 500, flag: s.flag, grpcStatus: s.grpcStatus, body: 'internal error while handling the request\n', code: 'CAPA_ERR_FILTER_FAILED', details: s.details };
}

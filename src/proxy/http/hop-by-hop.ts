/**
 * Headers the proxy never copies from one hop to the next: the connection-level ones Envoy
 * strips (RFC 9110 §7.6.1), plus the framing headers, which the proxy writes itself.
 */
export const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'content-length',
]);

export const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * StreamInfo: what is known about one request/response exchange, filled in as it goes and read
 * at the end by the metrics and access-log filters. Field names follow Envoy's access-log
 * command operators so the JSON access log can use them directly.
 */
export interface StreamInfo {
  /** Date.now() at the first byte of the request head. */
  startTime: number;
  /** performance.now() at the same instant, for durations. */
  startMono: number;
  /** ms from start to the last byte of the response, set when the stream completes. */
  durationMs: number;
  /** ms from the upstream request start to its response headers (x-envoy-upstream-service-time). */
  upstreamServiceTimeMs: number;
  requestId: string;
  method: string;
  /** Path as the downstream sent it (before rewrites). */
  path: string;
  authority: string;
  protocol: 'HTTP/1.0' | 'HTTP/1.1' | 'HTTP/2';
  userAgent: string;
  xForwardedFor: string;
  /** 0 until a response status is known (locally or from upstream). */
  responseCode: number;
  /** Envoy RESPONSE_CODE_DETAILS: why the response was what it was (e.g. via_upstream). */
  responseCodeDetails: string;
  /** Envoy short response flags, comma-joined in the log ("UF,URX"); '' for none. */
  responseFlags: string;
  bytesReceived: number;
  bytesSent: number;
  routeName: string;
  /** Name of the cluster the router chose ('' when none). */
  upstreamCluster: string;
  /** "ip:port" of the last upstream host tried ('' when none). */
  upstreamHost: string;
  upstreamTransportFailureReason: string;
  /** The peer's IP (rate-limit keys, hashing, x-forwarded-for). */
  downstreamRemoteAddress: string;
  /** The peer's port; 0 when unknown. The access log prints `ip:port` as Envoy does. */
  downstreamRemotePort: number;
  downstreamLocalAddress: string;
  /** Number of upstream attempts (1 + retries). */
  attempts: number;
  /** gRPC status from trailers or local reply, -1 when not gRPC. */
  grpcStatus: number;
  /** Listener traffic direction, for Istio's reporter label. */
  direction: 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';
  listenerName: string;
  /**
   * One record per upstream try, kept only when a filter asks for it by setting this to [] in
   * onRequestHeaders (tracing does, for sampled requests); null costs nothing on the hot path.
   */
  upstreamTries: UpstreamTry[] | null;
}

export interface UpstreamTry {
  /** "ip:port" of the host tried. */
  host: string;
  /** Date.now() when the try started. */
  startTime: number;
  durationMs: number;
  /** Response status, 0 when none arrived. */
  status: number;
  /** Error code when the try failed without a usable response ('' otherwise). */
  failure: string;
}

export function newStreamInfo(): StreamInfo {
  return {
    startTime: 0,
    startMono: 0,
    durationMs: 0,
    upstreamServiceTimeMs: -1,
    requestId: '',
    method: '',
    path: '',
    authority: '',
    protocol: 'HTTP/1.1',
    userAgent: '',
    xForwardedFor: '',
    responseCode: 0,
    responseCodeDetails: '',
    responseFlags: '',
    bytesReceived: 0,
    bytesSent: 0,
    routeName: '',
    upstreamCluster: '',
    upstreamHost: '',
    upstreamTransportFailureReason: '',
    downstreamRemoteAddress: '',
    downstreamRemotePort: 0,
    downstreamLocalAddress: '',
    attempts: 0,
    grpcStatus: -1,
    direction: 'UNSPECIFIED',
    listenerName: '',
    upstreamTries: null,
  };
}

/** Add an Envoy response flag once. */
export function addResponseFlag(info: StreamInfo, flag: string): void {
  if (!flag) return;
  if (info.responseFlags === '') info.responseFlags = flag;
  else if (!info.responseFlags.split(',').includes(flag)) info.responseFlags += `,${flag}`;
}

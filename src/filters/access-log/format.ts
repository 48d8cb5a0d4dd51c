/**
 * Access-log line formats.
 *
 * json: Istio's default JSON access-log fields (meshConfig.accessLogEncoding=JSON), in Istio's
 *   order; a value that is not available is `null`, as Envoy writes it.
 * text: Envoy's default format string:
 *   [%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE%
 *   %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%
 *   "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"
 *   with '-' for a value that is not available.
 * Neither format includes request bodies or the authorization header.
 */
import type { StreamInfo } from '../../proxy/stream-info.js';

export type AccessLogFormat = 'json' | 'text';

/** The JSON fields, in the order they are written. */
export const JSON_ACCESS_LOG_FIELDS = [
  'start_time',
  'method',
  'path',
  'protocol',
  'response_code',
  'response_flags',
  'response_code_details',
  'connection_termination_details',
  'upstream_transport_failure_reason',
  'bytes_received',
  'bytes_sent',
  'duration',
  'upstream_service_time',
  'x_forwarded_for',
  'user_agent',
  'request_id',
  'authority',
  'upstream_host',
  'upstream_cluster',
  'upstream_local_address',
  'downstream_local_address',
  'downstream_remote_address',
  'requested_server_name',
  'route_name',
] as const;

/** A JSON string, or null for ''. */
function js(s: string): string {
  return s === '' ? 'null' : JSON.stringify(s);
}

function ms(n: number): number {
  return n > 0 ? Math.trunc(n) : 0;
}

function upstreamServiceTime(i: StreamInfo): string {
  return i.upstreamServiceTimeMs >= 0 ? String(ms(i.upstreamServiceTimeMs)) : '';
}

/** One JSON line (with '\n'). */
export function formatJson(i: StreamInfo): string {
  return (
    '{"start_time":' +
    JSON.stringify(new Date(i.startTime).toISOString()) +
    ',"method":' +
    js(i.method) +
    ',"path":' +
    js(i.path) +
    ',"protocol":' +
    js(i.protocol) +
    ',"response_code":' +
    i.responseCode +
    ',"response_flags":' +
    js(i.responseFlags || '-') +
    ',"response_code_details":' +
    js(i.responseCodeDetails) +
    ',"connection_termination_details":null' +
    ',"upstream_transport_failure_reason":' +
    js(i.upstreamTransportFailureReason) +
    ',"bytes_received":' +
    i.bytesReceived +
    ',"bytes_sent":' +
    i.bytesSent +
    ',"duration":' +
    ms(i.durationMs) +
    ',"upstream_service_time":' +
    js(upstreamServiceTime(i)) +
    ',"x_forwarded_for":' +
    js(i.xForwardedFor) +
    ',"user_agent":' +
    js(i.userAgent) +
    ',"request_id":' +
    js(i.requestId) +
    ',"authority":' +
    js(i.authority) +
    ',"upstream_host":' +
    js(i.upstreamHost) +
    ',"upstream_cluster":' +
    js(i.upstreamCluster) +
    ',"upstream_local_address":null' +
    ',"downstream_local_address":' +
    js(i.downstreamLocalAddress) +
    ',"downstream_remote_address":' +
    js(hostPort(i.downstreamRemoteAddress, i.downstreamRemotePort)) +
    ',"requested_server_name":null' +
    ',"route_name":' +
    js(i.routeName) +
    '}\n'
  );
}

/** Envoy's %DOWNSTREAM_REMOTE_ADDRESS%: `ip:port` (`[v6]:port`); the bare IP when the port is unknown. */
function hostPort(ip: string, port: number): string {
  if (ip === '' || port === 0) return ip;
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

// Control characters and '"' would let a header value forge a line or a field.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\u0000-\u001f\u007f"\\]/;

/** A text field: '-' for '', escaped (JSON-style, without quotes) when it holds unsafe characters. */
function tx(s: string): string {
  if (s === '') return '-';
  return UNSAFE.test(s) ? JSON.stringify(s).slice(1, -1) : s;
}

/** One line of Envoy's default text format (with '\n'). */
export function formatText(i: StreamInfo): string {
  return (
    `[${new Date(i.startTime).toISOString()}] "${tx(i.method)} ${tx(i.path)} ${i.protocol}" ` +
    `${i.responseCode} ${tx(i.responseFlags)} ${i.bytesReceived} ${i.bytesSent} ${ms(i.durationMs)} ${tx(upstreamServiceTime(i))} ` +
    `"${tx(i.xForwardedFor)}" "${tx(i.userAgent)}" "${tx(i.requestId)}" "${tx(i.authority)}" "${tx(i.upstreamHost)}"\n`
  );
}

export function formatterFor(format: AccessLogFormat): (i: StreamInfo) => string {
  return format === 'json' ? formatJson : formatText;
}

import { describe, expect, it } from 'vitest';
import { formatJson, formatText, JSON_ACCESS_LOG_FIELDS } from '../../../../src/filters/access-log/format.js';
import { newStreamInfo, type StreamInfo } from '../../../../src/proxy/stream-info.js';

const T0 = Date.UTC(2024, 4, 6, 7, 8, 9, 123);

function full(): StreamInfo {
  return Object.assign(newStreamInfo(), {
    startTime: T0,
    durationMs: 12.7,
    upstreamServiceTimeMs: 9.2,
    requestId: 'req-1',
    method: 'GET',
    path: '/productpage?x=1',
    authority: 'productpage:9080',
    protocol: 'HTTP/1.1' as const,
    userAgent: 'curl/8.0',
    xForwardedFor: '10.0.0.1',
    responseCode: 200,
    responseCodeDetails: 'via_upstream',
    responseFlags: '',
    bytesReceived: 0,
    bytesSent: 1234,
    routeName: 'default',
    upstreamCluster: 'outbound|9080||productpage.default.svc.cluster.local',
    upstreamHost: '10.1.2.3:9080',
    downstreamRemoteAddress: '10.0.0.9',
    downstreamRemotePort: 51234,
    downstreamLocalAddress: '10.0.0.7:9080',
  });
}

describe('JSON access log', () => {
  it('writes every Istio field, in order, one line', () => {
    const line = formatJson(full());
    expect(line.endsWith('}\n')).toBe(true);
    expect(line.indexOf('\n')).toBe(line.length - 1);
    const obj = JSON.parse(line) as Record<string, unknown>;
    expect(Object.keys(obj)).toEqual([...JSON_ACCESS_LOG_FIELDS]);
    expect(obj).toEqual({
      start_time: '2024-05-06T07:08:09.123Z',
      method: 'GET',
      path: '/productpage?x=1',
      protocol: 'HTTP/1.1',
      response_code: 200,
      response_flags: '-',
      response_code_details: 'via_upstream',
      connection_termination_details: null,
      upstream_transport_failure_reason: null,
      bytes_received: 0,
      bytes_sent: 1234,
      duration: 12,
      upstream_service_time: '9',
      x_forwarded_for: '10.0.0.1',
      user_agent: 'curl/8.0',
      request_id: 'req-1',
      authority: 'productpage:9080',
      upstream_host: '10.1.2.3:9080',
      upstream_cluster: 'outbound|9080||productpage.default.svc.cluster.local',
      upstream_local_address: null,
      downstream_local_address: '10.0.0.7:9080',
      downstream_remote_address: '10.0.0.9:51234',
      requested_server_name: null,
      route_name: 'default',
    });
  });

  it('writes null for unknown values and the flags when set', () => {
    const obj = JSON.parse(formatJson(Object.assign(newStreamInfo(), { startTime: T0, responseCode: 503, responseFlags: 'UF,URX' }))) as Record<string, unknown>;
    expect(obj.response_flags).toBe('UF,URX');
    expect(obj.upstream_service_time).toBeNull();
    expect(obj.user_agent).toBeNull();
    expect(obj.method).toBeNull();
  });

  it('escapes hostile header values', () => {
    const line = formatJson(Object.assign(full(), { userAgent: 'a"b\nc', path: '/\u0000' }));
    expect(line.split('\n')).toHaveLength(2);
    expect((JSON.parse(line) as { user_agent: string }).user_agent).toBe('a"b\nc');
  });
});

describe('text access log', () => {
  it("uses Envoy's default format line", () => {
    expect(formatText(full())).toBe(
      '[2024-05-06T07:08:09.123Z] "GET /productpage?x=1 HTTP/1.1" 200 - 0 1234 12 9 "10.0.0.1" "curl/8.0" "req-1" "productpage:9080" "10.1.2.3:9080"\n',
    );
  });

  it("writes '-' for empty values and flags", () => {
    const i = Object.assign(newStreamInfo(), { startTime: T0, method: 'POST', path: '/x', protocol: 'HTTP/2' as const, responseCode: 503, responseFlags: 'UF' });
    expect(formatText(i)).toBe('[2024-05-06T07:08:09.123Z] "POST /x HTTP/2" 503 UF 0 0 0 - "-" "-" "-" "-" "-"\n');
  });

  it('cannot be split or forged by header values', () => {
    const line = formatText(Object.assign(full(), { userAgent: 'x" "forged\r\n[fake] line' }));
    expect(line.split('\n')).toHaveLength(2);
    expect(line).toContain('"x\\" \\"forged\\r\\n[fake] line"');
  });
});

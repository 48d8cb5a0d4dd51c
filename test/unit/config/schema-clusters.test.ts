/** Schema rules of clusters: each error names file:line:col, the key path and the reason. */
import { describe, expect, it } from 'vitest';
import { at, errorsOf, yaml } from './helpers.js';

describe('clusters', () => {
  it('endpoint strings', () => {
    const t = 'clusters:\n  - name: c\n    endpoints: ["10.0.0.1", "10.0.0.1:99999", "bad_host!:80", "[::1]8080"]\n';
    expect(errorsOf(t)).toEqual([
      `${at(t, '"10.0.0.1"')}: clusters[0].endpoints[0]: expected "host:port" (IPv6 as "[::1]:8080"), got "10.0.0.1"`,
      `${at(t, '"10.0.0.1:99999"')}: clusters[0].endpoints[1]: port 99999 is out of range 1-65535`,
      `${at(t, '"bad_host')}: clusters[0].endpoints[2]: expected an IP address or a host name, got "bad_host!"`,
      `${at(t, '"[::1]8080"')}: clusters[0].endpoints[3]: expected "host:port" (IPv6 as "[::1]:8080"), got "[::1]8080"`,
    ]);
  });

  it('endpoint objects are strict', () => {
    const t = 'clusters:\n  - name: c\n    endpoints: [{ address: 10.0.0.1, port: 80, wieght: 2 }]\n';
    expect(errorsOf(t)).toEqual([`${at(t, 'wieght')}: clusters[0].endpoints[0].wieght: unknown key 'wieght'`]);
  });

  it('STATIC needs IPs; ORIGINAL_DST takes no endpoints; LOGICAL_DNS one', () => {
    const t1 = 'clusters:\n  - name: c\n    type: STATIC\n    endpoints: ["db.local:5432"]\n';
    expect(errorsOf(t1)).toEqual([`${at(t1, '"db.local')}: clusters[0].endpoints[0]: a STATIC cluster needs IP addresses, got host name 'db.local' (use type: STRICT_DNS)`]);
    const t2 = 'clusters:\n  - name: c\n    type: ORIGINAL_DST\n    endpoints: ["10.0.0.1:1"]\n';
    expect(errorsOf(t2)).toEqual([`${at(t2, '[')}: clusters[0].endpoints: an ORIGINAL_DST cluster takes no endpoints (it forwards to the original destination)`]);
    const t3 = 'clusters:\n  - name: c\n    type: LOGICAL_DNS\n    endpoints: ["a.b:1", "c.d:1"]\n';
    expect(errorsOf(t3)).toEqual([`${at(t3, '[')}: clusters[0].endpoints: a LOGICAL_DNS cluster needs exactly one endpoint, got 2`]);
    const t4 = 'clusters:\n  - name: c\n    type: STATIC\n    lbPolicy: CLUSTER_PROVIDED\n';
    expect(errorsOf(t4)).toEqual([`${at(t4, 'CLUSTER_PROVIDED')}: clusters[0].lbPolicy: lbPolicy CLUSTER_PROVIDED needs type ORIGINAL_DST`]);
  });

  it('endpoints and loadAssignment are exclusive', () => {
    const t = 'clusters:\n  - name: c\n    endpoints: []\n    loadAssignment: { endpoints: [] }\n';
    expect(errorsOf(t)).toEqual([`${at(t, '{ endpoints')}: clusters[0].loadAssignment: use either 'endpoints' or Envoy's 'loadAssignment', not both`]);
  });

  it('loadAssignment is checked deep', () => {
    const text = yaml`
      clusters:
        - name: c
          loadAssignment:
            endpoints:
              - lbEndpoints:
                  - endpoint: { address: { socketAddress: { address: 10.0.0.1, portValue: 0 } } }
      `;
    expect(errorsOf(text)).toEqual([
      `${at(text, '0 }')}: clusters[0].loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress.portValue: expected a port number 1-65535`,
    ]);
  });

  it('health checks', () => {
    const t1 = 'clusters:\n  - name: c\n    healthChecks: [{ interval: 1s }]\n';
    expect(errorsOf(t1)).toEqual([`${at(t1, '{ interval')}: clusters[0].healthChecks[0]: expected one of 'httpHealthCheck', 'tcpHealthCheck'`]);
    const t2 = 'clusters:\n  - name: c\n    healthChecks: [{ httpHealthCheck: { path: /h, expectedStatuses: [{ start: 200, end: 200 }] } }]\n';
    expect(errorsOf(t2)).toEqual([
      `${at(t2, '200 }')}: clusters[0].healthChecks[0].httpHealthCheck.expectedStatuses[0].end: end (200) must be greater than start (200); the range is [start, end)`,
    ]);
  });

  it('circuit breakers: thresholds or flat, not both', () => {
    expect(errorsOf('clusters:\n  - name: c\n    circuitBreakers: { thresholds: [], maxRequests: 1 }\n')).toEqual([
      "sidecar.yaml:3:53: clusters[0].circuitBreakers.maxRequests: use either 'thresholds: [...]' or the flat form, not both",
    ]);
  });
});

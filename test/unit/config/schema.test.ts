/**
 * Every schema rule: the error names the file, the line and column of the offending YAML, the
 * key path and the reason.
 */
import { describe, expect, it } from 'vitest';
import { at, CLUSTER, errorsOf, load, withRoute, yaml } from './helpers.js';

describe('top level', () => {
  it('an unknown key is an error at the key', () => {
    expect(errorsOf('mode: sidecar\nlisteners: []\nxyz: 1\n')).toEqual(["sidecar.yaml:3:1: xyz: unknown key 'xyz'"]);
  });

  it('unknown keys in nested objects name the full path', () => {
    const text = yaml`
      sidecar:
        port: 3500
        traffic:
          interception: { enabled: true, outbound: 1 }
      `;
    expect(errorsOf(text)).toEqual(["sidecar.yaml:4:36: sidecar.traffic.interception.outbound: unknown key 'outbound'"]);
  });

  it('enums list the allowed values', () => {
    expect(errorsOf('mode: ambient\n')).toEqual(['sidecar.yaml:1:7: mode: expected one of "sidecar"|"proxyless"']);
    expect(errorsOf('logLevel: loud\n')[0]).toMatch(/^sidecar\.yaml:1:11: logLevel: expected one of "trace"\|"debug"/);
  });

  it('a document that is not a mapping', () => {
    expect(errorsOf('- a\n- b\n')).toEqual(['sidecar.yaml:1:1: expected a mapping, got a list']);
  });

  it('ports out of range', () => {
    expect(errorsOf('sidecar:\n  grpcPort: 70000\n')).toEqual(['sidecar.yaml:2:13: sidecar.grpcPort: expected a port number 0-65535']);
    expect(errorsOf('sidecar:\n  traffic: { interception: { inboundPort: 0 } }\n')).toEqual([
      'sidecar.yaml:2:43: sidecar.traffic.interception.inboundPort: expected a port number 1-65535',
    ]);
  });

  it('durations and sizes explain the expected form', () => {
    expect(errorsOf('drainTime: 45\n')).toEqual(['sidecar.yaml:1:12: drainTime: expected a duration such as "250ms" or "10s", got 45']);
    const text = yaml`
      listeners:
        - name: l
          port: 1
          routeConfig: r
          maxRequestHeaders: big
      routes: [{ name: r }]
      `;
    expect(errorsOf(text)).toEqual(['sidecar.yaml:5:24: listeners[0].maxRequestHeaders: expected a size such as "64KiB", "1MiB" or a number of bytes, got "big"']);
  });

  it('proxyless mode cannot intercept', () => {
    expect(errorsOf('mode: proxyless\nsidecar:\n  traffic:\n    interception:\n      enabled: true\n')).toEqual([
      'sidecar.yaml:5:16: sidecar.traffic.interception.enabled: traffic interception needs mode: sidecar',
    ]);
  });

  it('reports every problem, in file order', () => {
    const text = yaml`
      concurrency: 0
      sidecar:
        port: abc
      clusters:
        - name: backend
          connectTimeout: 5
          lbPolicy: FASTEST
      `;
    expect(errorsOf(text)).toEqual([
      'sidecar.yaml:1:14: concurrency: expected a worker count 1-1024',
      'sidecar.yaml:3:9: sidecar.port: expected a port number 0-65535, got "abc"',
      'sidecar.yaml:6:21: clusters[0].connectTimeout: expected a duration such as "250ms" or "10s", got 5',
      'sidecar.yaml:7:15: clusters[0].lbPolicy: expected one of "ROUND_ROBIN"|"LEAST_REQUEST"|"RANDOM"|"RING_HASH"|"MAGLEV"|"CLUSTER_PROVIDED"',
    ]);
  });
});

describe('listeners', () => {
  it('a missing required key points at the enclosing item', () => {
    expect(errorsOf('listeners:\n  - port: 8000\n    routeConfig: r\nroutes: [{name: r}]\n')).toEqual(['sidecar.yaml:2:5: listeners[0].name: is required']);
  });

  it('address must be an IP', () => {
    expect(errorsOf('listeners:\n  - name: l\n    address: localhost\n    port: 1\n    routeConfig: r\nroutes: [{name: r}]\n')).toEqual([
      'sidecar.yaml:3:14: listeners[0].address: expected an IP address, got "localhost"',
    ]);
  });

  it('an http listener needs routes; a tcp one a cluster and no routes', () => {
    expect(errorsOf('listeners:\n  - name: l\n    port: 1\n')).toEqual(["sidecar.yaml:2:11: listeners[0].name: an http listener needs 'routeConfig' or inline 'routes'"]);
    expect(errorsOf('listeners:\n  - name: t\n    port: 1\n    protocol: tcp\n    routeConfig: r\n')).toEqual([
      "sidecar.yaml:4:15: listeners[0].protocol: a tcp listener needs 'tcpCluster'",
      "sidecar.yaml:5:18: listeners[0].routeConfig: 'routeConfig' applies to http listeners only (protocol is tcp)",
    ]);
  });

  it('routeConfig and inline routes are exclusive', () => {
    expect(errorsOf('listeners:\n  - name: l\n    port: 1\n    routeConfig: r\n    routes: {}\n')).toEqual([
      "sidecar.yaml:5:13: listeners[0].routes: use either 'routeConfig' (a name from 'routes:') or inline 'routes', not both",
    ]);
  });

  it('filter items are strict; config and typedConfig are exclusive', () => {
    const t1 = 'listeners:\n  - name: l\n    port: 1\n    routeConfig: r\n    httpFilters: [{ name: envoy.filters.http.router, cfg: {} }]\nroutes: [{name: r}]\n';
    expect(errorsOf(t1)).toEqual([`${at(t1, 'cfg')}: listeners[0].httpFilters[0].cfg: unknown key 'cfg'`]);
    const t2 = 'listeners:\n  - name: l\n    port: 1\n    routeConfig: r\n    httpFilters: [{ name: envoy.filters.http.router, config: {}, typedConfig: {} }]\nroutes: [{name: r}]\n';
    expect(errorsOf(t2)).toEqual([`${at(t2, '{}', 1)}: listeners[0].httpFilters[0].typedConfig: 'config' and 'typedConfig' cannot both be set`]);
  });
});

describe('defaults', () => {
  it('an empty file is a valid config with every default', () => {
    for (const text of ['', '# only a comment\n', '---\n']) {
      const { snapshot } = load(text);
      expect(snapshot.mode).toBe('sidecar');
      expect(snapshot.sidecar).toEqual({
        port: 3500,
        grpcPort: 50001,
        metricsPort: 9090,
        adminPort: 15000,
        adminAddress: '127.0.0.1',
        prometheusPort: 15090,
        readinessPort: 15021,
        interception: { enabled: false, outboundPort: 15001, inboundPort: 15006 },
      });
      expect(snapshot.app).toEqual({ id: 'default', port: 0, address: '127.0.0.1', protocol: 'http' });
      expect(snapshot.accessLog).toEqual({ path: '', format: 'json' });
      expect(snapshot.drainTimeMs).toBe(45_000);
      expect(snapshot.concurrency).toBe(1);
      expect(snapshot.logLevel).toBe('info');
      expect(snapshot.listeners).toEqual([]);
      expect(Object.keys(snapshot.clusters).sort()).toEqual(['InboundPassthroughCluster', 'PassthroughCluster']);
    }
  });

  it('node info comes from the environment, else app.id and "default"', () => {
    expect(load('app: { id: orders }\n').snapshot.node).toEqual({
      id: 'sidecar~127.0.0.1~orders.default~default.svc.cluster.local',
      cluster: 'orders',
      workloadName: 'orders',
      namespace: 'default',
      canonicalService: 'orders',
      canonicalRevision: 'latest',
      meshId: 'cluster.local',
    });
    const env = { POD_NAME: 'orders-7d9f-abcde', POD_NAMESPACE: 'shop', ISTIO_META_WORKLOAD_NAME: 'orders-v1', INSTANCE_IP: '10.1.2.3' };
    expect(load('app: { id: orders }\n', env).snapshot.node).toMatchObject({
      id: 'sidecar~10.1.2.3~orders-7d9f-abcde.shop~shop.svc.cluster.local',
      workloadName: 'orders-v1',
      namespace: 'shop',
    });
    expect(load('node: { id: n1, cluster: c1, meshId: m }\n', env).snapshot.node).toMatchObject({ id: 'n1', cluster: 'c1', meshId: 'm' });
  });

  it('listener, route and cluster defaults follow Envoy', () => {
    const { snapshot } = load(withRoute('{ match: { prefix: / }, route: { cluster: b } }'));
    const l = snapshot.listeners[0]!;
    expect(l).toMatchObject({ address: '0.0.0.0', kind: 'plain', direction: 'UNSPECIFIED', protocol: 'http', routeConfigName: 'l', tcpCluster: '' });
    expect(l.http).toEqual({
      requestTimeoutMs: 0,
      requestHeadersTimeoutMs: 10_000,
      idleTimeoutMs: 3_600_000,
      maxRequestHeadersBytes: 61_440,
      useRemoteAddress: true,
      generateRequestId: true,
      serverName: 'capa-runtime',
      maxReplayBufferBytes: 1_048_576,
    });
    const vh = snapshot.routeConfigs.l!.virtualHosts[0]!;
    expect(vh.domains).toEqual(['*']);
    expect(vh.routes[0]!.name).toBe('v/0');
    expect(vh.routes[0]!.match).toEqual({ prefix: '/', caseSensitive: true, methods: [], headers: [], queryParameters: [] });
    expect(vh.routes[0]!.action).toMatchObject({ kind: 'route', cluster: 'b', timeoutMs: 15_000, idleTimeoutMs: 0, retryPolicy: null, autoHostRewrite: false });
    expect(snapshot.clusters.b).toEqual({
      name: 'b',
      type: 'STATIC',
      lbPolicy: 'ROUND_ROBIN',
      connectTimeoutMs: 5000,
      protocol: 'http1',
      dnsRefreshRateMs: 5000,
      dnsLookupFamily: 'AUTO',
      ringHash: { minimumRingSize: 1024, maximumRingSize: 8_388_608 },
      leastRequest: { choiceCount: 2 },
      circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
      pool: { idleTimeoutMs: 3_600_000, maxRequestsPerConnection: 0 },
      healthChecks: [],
      healthyPanicThreshold: 50,
      upstreamBindAddress: '',
      outlierDetection: null,
    });
    expect(snapshot.endpoints.b).toEqual({
      clusterName: 'b',
      endpoints: [{ address: '127.0.0.1', port: 80, weight: 1, healthStatus: 'UNKNOWN', locality: { region: '', zone: '', subZone: '' }, priority: 0 }],
    });
  });

  it('a cluster with a host name defaults to STRICT_DNS', () => {
    expect(load('clusters: [{ name: c, endpoints: ["db.svc:5432", "10.0.0.1:5432"] }]\n').snapshot.clusters.c!.type).toBe('STRICT_DNS');
  });

  it('retry policy defaults (Envoy) and the virtual host default', () => {
    const text = yaml`
      routes:
        - name: r
          virtualHosts:
            - name: v
              retryPolicy: { retryOn: [reset] }
              routes:
                - { match: { prefix: /a }, route: { cluster: b, retryPolicy: { retryOn: "5xx, connect-failure", retryBackOff: { baseInterval: 100ms } } } }
                - { match: { prefix: /b }, route: { cluster: b } }
      ` + CLUSTER;
    const vh = load(text).snapshot.routeConfigs.r!.virtualHosts[0]!;
    expect(vh.retryPolicy).toEqual({ retryOn: ['reset'], numRetries: 1, perTryTimeoutMs: 0, retriableStatusCodes: [], backoffBaseMs: 25, backoffMaxMs: 250 });
    expect(vh.routes[0]!.action).toMatchObject({ retryPolicy: { retryOn: ['5xx', 'connect-failure'], backoffBaseMs: 100, backoffMaxMs: 1000 } });
    expect(vh.routes[1]!.action).toMatchObject({ retryPolicy: vh.retryPolicy });
  });
});

describe('Envoy-shaped alternatives', () => {
  it('string matchers, presence and query parameters', () => {
    const r = load(
      withRoute(
        '{ match: { safeRegex: "^/x", headers: [{ name: X-A, stringMatch: { suffix: z } }, { name: x-b, presentMatch: false }, { name: x-c }, { name: x-d, contains: q, invertMatch: true }], queryParameters: [{ name: u, stringMatch: { exact: "1" } }, { name: v }] }, route: { cluster: b } }',
      ),
    ).snapshot.routeConfigs.l!.virtualHosts[0]!.routes[0]!.match;
    expect(r.safeRegex).toBe('^/x');
    expect(r.headers).toEqual([
      { name: 'x-a', suffix: 'z', invert: false },
      { name: 'x-b', present: false, invert: false },
      { name: 'x-c', present: true, invert: false },
      { name: 'x-d', contains: 'q', invert: true },
    ]);
    expect(r.queryParameters).toEqual([{ name: 'u', exact: '1' }, { name: 'v', present: true }]);
  });

  it('directResponse body as inlineString, redirect codes by name, headers as HeaderValueOption', () => {
    const text = yaml`
      routes:
        - name: r
          requestHeadersToAdd: [{ header: { key: X-A, value: "1" }, appendAction: OVERWRITE_IF_EXISTS_OR_ADD }, { name: x-b, value: 2, action: addIfAbsent }]
          virtualHosts:
            - name: v
              routes:
                - { match: { path: /a }, directResponse: { status: 200, body: { inlineString: "ok\\n" } } }
                - { match: { path: /b }, redirect: { responseCode: SEE_OTHER, httpsRedirect: true } }
                - { match: { path: /c }, redirect: { hostRedirect: x.example } }
      `;
    const rc = load(text).snapshot.routeConfigs.r!;
    expect(rc.requestHeadersToAdd).toEqual([
      { name: 'x-a', value: '1', action: 'overwrite' },
      { name: 'x-b', value: '2', action: 'addIfAbsent' },
    ]);
    const [a, b, c] = rc.virtualHosts[0]!.routes.map((x) => x.action);
    expect(a).toEqual({ kind: 'directResponse', status: 200, body: 'ok\n' });
    expect(b).toEqual({ kind: 'redirect', schemeRedirect: 'https', responseCode: 303, stripQuery: false });
    expect(c).toEqual({ kind: 'redirect', hostRedirect: 'x.example', responseCode: 301, stripQuery: false });
  });

  it('regexRewrite pattern as a string, hash policies', () => {
    const a = load(
      withRoute(
        '{ match: { prefix: / }, route: { cluster: b, regexRewrite: { pattern: "^/v1/(.*)", substitution: "/\\\\1" }, hashPolicy: [{ header: { headerName: X-User } }, { connectionProperties: { sourceIp: true }, terminal: true }, { queryParameter: { name: u } }] } }',
      ),
    ).snapshot.routeConfigs.l!.virtualHosts[0]!.routes[0]!.action;
    expect(a).toMatchObject({
      regexRewrite: { pattern: '^/v1/(.*)', substitution: '/\\1' },
      hashPolicy: [
        { kind: 'header', name: 'x-user', terminal: false },
        { kind: 'sourceIp', terminal: true },
        { kind: 'queryParameter', name: 'u', terminal: false },
      ],
    });
  });

  it('loadAssignment, IPv6 endpoints, circuit breakers, panic threshold as a Percent', () => {
    const text = yaml`
      clusters:
        - name: c
          loadAssignment:
            clusterName: c
            endpoints:
              - locality: { region: r1, zone: z1 }
                priority: 1
                lbEndpoints:
                  - endpoint: { address: { socketAddress: { address: "::1", portValue: 8080 } } }
                    loadBalancingWeight: 3
                    healthStatus: HEALTHY
          circuitBreakers: { maxConnections: 10 }
          commonLbConfig: { healthyPanicThreshold: { value: 0 } }
        - name: d
          endpoints: ["[::1]:9090"]
          circuitBreakers: { thresholds: [{ priority: HIGH, maxRequests: 1 }, { maxRequests: 7 }] }
      `;
    const s = load(text).snapshot;
    expect(s.endpoints.c!.endpoints).toEqual([
      { address: '::1', port: 8080, weight: 3, healthStatus: 'HEALTHY', locality: { region: 'r1', zone: 'z1', subZone: '' }, priority: 1 },
    ]);
    expect(s.clusters.c!.circuitBreakers).toEqual({ maxConnections: 10, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 });
    expect(s.clusters.c!.healthyPanicThreshold).toBe(0);
    expect(s.endpoints.d!.endpoints[0]).toMatchObject({ address: '::1', port: 9090 });
    expect(s.clusters.d!.circuitBreakers.maxRequests).toBe(7);
  });

  it('health checks: tcp with an empty value, http with Envoy status ranges', () => {
    const s = load('clusters:\n  - name: c\n    healthChecks:\n      - tcpHealthCheck:\n      - httpHealthCheck: { path: /h, expectedStatuses: [{ start: 200, end: 400 }] }\n').snapshot;
    expect(s.clusters.c!.healthChecks).toEqual([
      { intervalMs: 5000, timeoutMs: 1000, unhealthyThreshold: 3, healthyThreshold: 2, http: null },
      { intervalMs: 5000, timeoutMs: 1000, unhealthyThreshold: 3, healthyThreshold: 2, http: { path: '/h', host: '', expectedStatuses: [[200, 400]] } },
    ]);
  });
});

describe('upstream bind address', () => {
  it('takes Envoy upstreamBindConfig in both forms and binds the inbound passthrough to 127.0.0.6', () => {
    const s = load(yaml`
      clusters:
        - name: a
          endpoints: ["127.0.0.1:1"]
          upstreamBindConfig: { sourceAddress: { address: 127.0.0.9, portValue: 0 } }
        - name: b
          endpoints: ["127.0.0.1:2"]
          upstreamBindConfig: { sourceAddress: 127.0.0.8 }
    `).snapshot;
    expect(s.clusters.a!.upstreamBindAddress).toBe('127.0.0.9');
    expect(s.clusters.b!.upstreamBindAddress).toBe('127.0.0.8');
    expect(s.clusters.InboundPassthroughCluster!.upstreamBindAddress).toBe('127.0.0.6');
    expect(s.clusters.PassthroughCluster!.upstreamBindAddress).toBe('');
    // Istio's passthrough clusters keep the downstream protocol (h2 in → h2c out).
    expect(s.clusters.PassthroughCluster!.protocol).toBe('downstream');
    expect(s.clusters.a!.protocol).toBe('http1');
  });

  it('rejects a source address that is not an IP, naming the key', () => {
    const errs = errorsOf(yaml`
      clusters:
        - name: a
          endpoints: ["127.0.0.1:1"]
          upstreamBindConfig: { sourceAddress: here }
    `);
    expect(errs.join('\n')).toMatch(/clusters\[0\]\.upstreamBindConfig\.sourceAddress.*IP address/);
  });
});

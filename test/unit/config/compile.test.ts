/**
 * Cross-checks of compileConfig (each error names file:line:col, key path and reason), the
 * generated capture listeners, filter chains against the registry, and the Snapshot's form.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileConfig, DEFAULT_HTTP_FILTERS } from '../../../src/config/compile.js';
import { configSchema } from '../../../src/config/schema.js';
import { FilterRegistry } from '../../../src/filters/registry.js';
import { ConfigError } from '../../../src/errors.js';
import { at, errorsOf, load, registry, yaml } from './helpers.js';

const KNOWN = 'capa.filters.http.access_log, envoy.filters.http.fault, envoy.filters.http.router, istio.stats';

const BASE = yaml`
  routes:
    - name: r
      virtualHosts:
        - name: v
          routes:
            - { match: { prefix: / }, route: { cluster: b } }
  clusters:
    - name: b
      endpoints: ["127.0.0.1:8080"]
  `;

function listener(body: string): string {
  return `listeners:\n${body}${BASE}`;
}

describe('cross-checks', () => {
  it('duplicate listener names', () => {
    const t = listener('  - { name: a, port: 1, routeConfig: r }\n  - { name: a, port: 2, routeConfig: r }\n');
    expect(errorsOf(t)).toEqual([`${at(t, 'a,', 1)}: listeners[1].name: duplicate listener name 'a'`]);
  });

  it('duplicate route configuration names, also against an inline one', () => {
    const dup = yaml`
      routes:
        - name: r
        - name: r
        - name: l
      listeners:
        - name: l
          port: 1
          routes: { virtualHosts: [] }
      `;
    expect(errorsOf(dup)).toEqual([
      `${at(dup, 'r\n', 1)}: routes[1].name: duplicate route configuration name 'r'`,
      `${at(dup, '{ virtualHosts')}: listeners[0].routes: duplicate route configuration name 'l'`,
    ]);
  });

  it('duplicate cluster names', () => {
    const t = `${BASE}  - name: b\n`;
    expect(errorsOf(t)).toEqual([`${at(t, 'b\n', 1)}: clusters[1].name: duplicate cluster name 'b'`]);
  });

  it('two listeners on one address:port, and a wildcard overlapping an address', () => {
    const t1 = listener('  - { name: a, address: 127.0.0.1, port: 8000, routeConfig: r }\n  - { name: c, address: 127.0.0.1, port: 8000, routeConfig: r }\n');
    expect(errorsOf(t1)).toEqual([`${at(t1, '8000', 1)}: listeners[1].port: listener 'c' on 127.0.0.1:8000 clashes with listener 'a' on 127.0.0.1:8000`]);
    const t2 = listener('  - { name: a, port: 8000, routeConfig: r }\n  - { name: c, address: 127.0.0.1, port: 8000, routeConfig: r }\n');
    expect(errorsOf(t2)).toEqual([`${at(t2, '8000', 1)}: listeners[1].port: listener 'c' on 127.0.0.1:8000 clashes with listener 'a' on 0.0.0.0:8000`]);
    // Different addresses, same port, and port 0 (ephemeral) twice are fine.
    load(listener('  - { name: a, address: 127.0.0.1, port: 8000, routeConfig: r }\n  - { name: c, address: 127.0.0.2, port: 8000, routeConfig: r }\n'));
    load(listener('  - { name: a, port: 0, routeConfig: r }\n  - { name: c, port: 0, routeConfig: r }\n'));
  });

  it('a listener on a capture port or a sidecar server port', () => {
    const t1 = `sidecar: { traffic: { interception: { enabled: true } } }\n${listener('  - { name: a, port: 15001, routeConfig: r }\n')}`;
    expect(errorsOf(t1)).toEqual([`${at(t1, '15001')}: listeners[0].port: listener 'a' on 0.0.0.0:15001 clashes with listener 'virtualOutbound' on 0.0.0.0:15001`]);
    const t2 = listener('  - { name: a, port: 15000, routeConfig: r }\n');
    expect(errorsOf(t2)).toEqual([`${at(t2, '15000')}: listeners[0].port: listener 'a' uses port 15000, which sidecar.adminPort already uses`]);
  });

  it('a listener routeConfig that does not exist', () => {
    const t = listener('  - { name: a, port: 1, routeConfig: nope }\n');
    expect(errorsOf(t)).toEqual([`${at(t, 'nope')}: listeners[0].routeConfig: unknown route configuration 'nope' (defined: r)`]);
  });

  it('a route pointing at an unknown cluster, plain and weighted', () => {
    const t = yaml`
      routes:
        - name: r
          virtualHosts:
            - name: v
              routes:
                - { match: { prefix: /a }, route: { cluster: ghost } }
                - { match: { prefix: /b }, route: { weightedClusters: { clusters: [{ name: b, weight: 1 }, { name: phantom, weight: 1 }] } } }
      clusters: [{ name: b }]
      `;
    expect(errorsOf(t)).toEqual([
      `${at(t, 'ghost')}: routes[0].virtualHosts[0].routes[0].route.cluster: unknown cluster 'ghost'`,
      `${at(t, 'phantom')}: routes[0].virtualHosts[0].routes[1].route.weightedClusters.clusters[1].name: unknown cluster 'phantom'`,
    ]);
  });

  it('a tcp listener pointing at an unknown cluster', () => {
    const t = listener('  - { name: db, port: 5432, protocol: tcp, tcpCluster: pg }\n');
    expect(errorsOf(t)).toEqual([`${at(t, 'pg }')}: listeners[0].tcpCluster: unknown cluster 'pg'`]);
  });

  it('the passthrough clusters are always there to route to', () => {
    const t = yaml`
      routes:
        - name: r
          virtualHosts: [{ name: v, routes: [{ match: { prefix: / }, route: { cluster: PassthroughCluster } }] }]
      `;
    expect(load(t).snapshot.clusters.PassthroughCluster).toMatchObject({ type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED' });
  });

  it('reports every cross-check problem at once', () => {
    const t = listener('  - { name: a, port: 1, routeConfig: nope }\n  - { name: a, port: 2, routeConfig: r }\n');
    expect(errorsOf(t)).toEqual([
      `${at(t, 'nope')}: listeners[0].routeConfig: unknown route configuration 'nope' (defined: r)`,
      `${at(t, 'a,', 1)}: listeners[1].name: duplicate listener name 'a'`,
    ]);
  });
});

describe('http filters', () => {
  const withFilters = (filters: string) => listener(`  - name: a\n    port: 1\n    routeConfig: r\n    httpFilters: ${filters}\n`);

  it('the default chain', () => {
    expect(DEFAULT_HTTP_FILTERS).toEqual(['istio.stats', 'capa.filters.http.access_log', 'envoy.filters.http.router']);
    const l = load(listener('  - { name: a, port: 1, routeConfig: r }\n')).snapshot.listeners[0]!;
    expect(l.httpFilters).toEqual(DEFAULT_HTTP_FILTERS.map((name) => ({ name, config: {}, disabled: false })));
  });

  it('the default chain leaves out filters that are not registered, but needs the router', () => {
    const parsed = configSchema.parse({ listeners: [{ name: 'a', port: 1, routeConfig: 'r' }], routes: [{ name: 'r' }] });
    const reg = new FilterRegistry();
    reg.register(registry.get('envoy.filters.http.router')!);
    const s = compileConfig(parsed, { filters: reg, version: '1', env: {} });
    expect(s.listeners[0]!.httpFilters.map((f) => f.name)).toEqual(['envoy.filters.http.router']);
    expect(() => compileConfig(parsed, { filters: new FilterRegistry(), version: '1', env: {} })).toThrow(
      'listeners[0].name: the default http filter envoy.filters.http.router is not registered (known: none registered)',
    );
  });

  it('an unknown filter name lists the known ones', () => {
    const t = withFilters('[{ name: envoy.filters.http.cors }, { name: envoy.filters.http.router }]');
    expect(errorsOf(t)).toEqual([`${at(t, 'envoy.filters.http.cors')}: listeners[0].httpFilters[0].name: unknown http filter 'envoy.filters.http.cors' (known: ${KNOWN})`]);
  });

  it('the last filter must be the router', () => {
    const t1 = withFilters('[{ name: envoy.filters.http.router }, { name: istio.stats }]');
    expect(errorsOf(t1)).toEqual([
      `${at(t1, 'envoy.filters.http.router')}: listeners[0].httpFilters[0].name: envoy.filters.http.router must be the last http filter`,
      `${at(t1, 'istio.stats')}: listeners[0].httpFilters[1].name: the last http filter must be envoy.filters.http.router, got 'istio.stats'`,
    ]);
    const t2 = withFilters('[]');
    expect(errorsOf(t2)).toEqual([`${at(t2, '[]')}: listeners[0].httpFilters: the http filter chain must end with envoy.filters.http.router, got an empty list`]);
  });

  it('a filter may appear once', () => {
    const t = withFilters('[{ name: istio.stats }, { name: istio.stats }, { name: envoy.filters.http.router }]');
    expect(errorsOf(t)).toEqual([`${at(t, 'istio.stats', 1)}: listeners[0].httpFilters[1].name: filter istio.stats appears more than once in the chain`]);
  });

  it("each config is checked by the factory's parseConfig, at the YAML position", () => {
    const t = withFilters('[{ name: envoy.filters.http.fault, config: { abort: { httpStatus: 42 } } }, { name: envoy.filters.http.router }]');
    expect(errorsOf(t)).toEqual([`${at(t, '42')}: listeners[0].httpFilters[0].config.abort.httpStatus: expected number to be >=200`]);
    const t2 = withFilters('[{ name: envoy.filters.http.router, typedConfig: { bogus: 1 } }]');
    expect(errorsOf(t2)).toEqual([`${at(t2, 'bogus')}: listeners[0].httpFilters[0].typedConfig.bogus: unknown key 'bogus'`]);
  });

  it("Envoy's typedConfig with @type, aliases, disabled filters", () => {
    const t = withFilters(
      '[{ name: envoy.filters.http.fault, disabled: true, typedConfig: { "@type": type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault, delay: { fixedDelay: 1s } } }, { name: envoy.router }]',
    );
    expect(load(t).snapshot.listeners[0]!.httpFilters).toEqual([
      { name: 'envoy.filters.http.fault', config: { delay: { fixedDelay: '1s' } }, disabled: true },
      { name: 'envoy.filters.http.router', config: {}, disabled: false },
    ]);
    const bad = withFilters('[{ name: envoy.filters.http.router, typedConfig: { "@type": type.googleapis.com/x.Y } }]');
    expect(errorsOf(bad)).toEqual([
      `${at(bad, 'type.googleapis.com/x.Y')}: listeners[0].httpFilters[0].typedConfig["@type"]: type type.googleapis.com/x.Y does not belong to filter envoy.filters.http.router (expected type.googleapis.com/envoy.extensions.filters.http.router.v3.Router)`,
    ]);
  });

  it('the router cannot be disabled', () => {
    const t = withFilters('[{ name: envoy.filters.http.router, disabled: true }]');
    expect(errorsOf(t)).toEqual([`${at(t, 'true')}: listeners[0].httpFilters[0].disabled: envoy.filters.http.router cannot be disabled`]);
  });
});

describe('per-route filter config', () => {
  const withPerRoute = (where: 'vhost' | 'route', body: string) =>
    yaml`
    routes:
      - name: r
        virtualHosts:
          - name: v
            ${where === 'vhost' ? `typedPerFilterConfig: ${body}` : 'domains: ["*"]'}
            routes:
              - match: { prefix: / }
                route: { cluster: b }
                ${where === 'route' ? `typedPerFilterConfig: ${body}` : ''}
    clusters: [{ name: b }]
    `;

  it('is checked by parsePerRoute and keyed by canonical name', () => {
    const s = load(withPerRoute('route', '{ envoy.filters.http.fault: { abort: { httpStatus: 503 } } }')).snapshot;
    expect(s.routeConfigs.r!.virtualHosts[0]!.routes[0]!.typedPerFilterConfig).toEqual({ 'envoy.filters.http.fault': { abort: { httpStatus: 503 } } });
    const t = withPerRoute('vhost', '{ envoy.filters.http.fault: { abort: { httpStatus: "x" } } }');
    expect(errorsOf(t)).toEqual([
      `${at(t, '"x"')}: routes[0].virtualHosts[0].typedPerFilterConfig["envoy.filters.http.fault"].abort.httpStatus: expected number, got string`,
    ]);
  });

  it('an unknown filter name is an error at the key', () => {
    const t = withPerRoute('route', '{ envoy.filters.http.nope: {} }');
    expect(errorsOf(t)).toEqual([`${at(t, 'envoy.filters.http.nope')}: routes[0].virtualHosts[0].routes[0].typedPerFilterConfig["envoy.filters.http.nope"]: unknown http filter 'envoy.filters.http.nope' (known: ${KNOWN})`]);
  });

  it('a factory without parsePerRoute accepts only {disabled: true}', () => {
    const ok = load(withPerRoute('route', '{ istio.stats: { disabled: true } }')).snapshot;
    expect(ok.routeConfigs.r!.virtualHosts[0]!.routes[0]!.typedPerFilterConfig).toEqual({ 'istio.stats': { disabled: true } });
    const t = withPerRoute('route', '{ istio.stats: { sample: 1 } }');
    expect(errorsOf(t)).toEqual([
      `${at(t, '{ sample')}: routes[0].virtualHosts[0].routes[0].typedPerFilterConfig["istio.stats"]: filter istio.stats takes no per-route config; only {disabled: true} is accepted`,
    ]);
  });
});

describe('interception', () => {
  const text = 'sidecar: { traffic: { interception: { enabled: true, outboundPort: 15101, inboundPort: 15106 } } }\n';

  it('adds the two capture listeners and their route configurations', () => {
    const s = load(text).snapshot;
    expect(s.listeners.map((l) => [l.name, l.address, l.port, l.kind, l.direction, l.protocol, l.routeConfigName, l.tcpCluster])).toEqual([
      ['virtualOutbound', '0.0.0.0', 15101, 'outbound-capture', 'OUTBOUND', 'auto', 'virtualOutbound', 'PassthroughCluster'],
      ['virtualInbound', '0.0.0.0', 15106, 'inbound-capture', 'INBOUND', 'auto', 'virtualInbound', 'InboundPassthroughCluster'],
    ]);
    expect(s.listeners[0]!.httpFilters.map((f) => f.name)).toEqual([...DEFAULT_HTTP_FILTERS]);
    for (const [rc, cluster] of [['virtualOutbound', 'PassthroughCluster'], ['virtualInbound', 'InboundPassthroughCluster']] as const) {
      const vh = s.routeConfigs[rc]!.virtualHosts;
      expect(vh).toHaveLength(1);
      expect(vh[0]!.domains).toEqual(['*']);
      expect(vh[0]!.routes[0]!.match.prefix).toBe('/');
      expect(vh[0]!.routes[0]!.action).toMatchObject({ kind: 'route', cluster, timeoutMs: 0 });
    }
    expect(s.clusters.InboundPassthroughCluster).toMatchObject({ type: 'ORIGINAL_DST', lbPolicy: 'CLUSTER_PROVIDED' });
    expect(s.endpoints.PassthroughCluster).toEqual({ clusterName: 'PassthroughCluster', endpoints: [] });
  });

  it('no capture listeners when interception is off', () => {
    const s = load('').snapshot;
    expect(s.listeners).toEqual([]);
    expect(s.routeConfigs).toEqual({});
  });

  it("keeps the user's own PassthroughCluster", () => {
    const s = load(`${text}clusters: [{ name: PassthroughCluster, endpoints: ["127.0.0.1:9"] }]\n`).snapshot;
    expect(s.clusters.PassthroughCluster!.type).toBe('STATIC');
  });

  it('a user listener or route configuration may not take a capture name', () => {
    const t = `${text}listeners: [{ name: virtualInbound, port: 1, routeConfig: virtualInbound }]\n`;
    expect(errorsOf(t)).toEqual([`${at(t, 'virtualInbound')}: listeners[0].name: duplicate listener name 'virtualInbound'`]);
  });
});

describe('the Snapshot', () => {
  const routing = readFileSync(new URL('../../../examples/routing.yaml', import.meta.url), 'utf8');

  it('examples/routing.yaml compiles and uses most routing features', () => {
    const { snapshot: s } = load(routing);
    expect(s.listeners.map((l) => l.name)).toEqual(['ingress', 'db-proxy']);
    const vhs = s.routeConfigs.shop!.virtualHosts;
    expect(vhs.map((v) => v.name)).toEqual(['api', 'www', 'default']);
    const kinds = new Set(vhs.flatMap((v) => v.routes.map((r) => r.action.kind)));
    expect([...kinds].sort()).toEqual(['directResponse', 'redirect', 'route']);
    expect(s.clusters.web!.type).toBe('STRICT_DNS');
    expect(s.endpoints.carts!.endpoints).toHaveLength(2);
    expect(s.listeners[1]).toMatchObject({ protocol: 'tcp', tcpCluster: 'postgres', httpFilters: [] });
  });

  it('examples/sidecar.yaml compiles: app orders, interception, app-egress', () => {
    const text = readFileSync(new URL('../../../examples/sidecar.yaml', import.meta.url), 'utf8');
    const s = load(text, { APP_PORT: '8181' }).snapshot;
    expect(s.app).toEqual({ id: 'orders', port: 8181, address: '127.0.0.1', protocol: 'http' });
    expect(s.listeners.map((l) => `${l.name}@${l.address}:${l.port}`)).toEqual(['virtualOutbound@0.0.0.0:15001', 'virtualInbound@0.0.0.0:15006', 'app-egress@127.0.0.1:15080', 'capa-invocation@127.0.0.1:15007']);
    expect(s.endpoints.app!.endpoints[0]).toMatchObject({ address: '127.0.0.1', port: 8181 });
    // Invoking our own app id reaches the app.
    expect(s.endpoints['invoke|orders']!.endpoints[0]).toMatchObject({ address: '127.0.0.1', port: 8181 });
    expect(s.accessLog).toEqual({ path: '/dev/stdout', format: 'json' });
  });

  it('is deeply frozen and JSON-serialisable', () => {
    const { snapshot: s } = load(routing);
    expect(Object.isFrozen(s)).toBe(true);
    expect(Object.isFrozen(s.listeners[0]!.http)).toBe(true);
    expect(Object.isFrozen(s.routeConfigs.shop!.virtualHosts[0]!.routes[0]!.match.headers)).toBe(true);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s);
    expect(() => {
      (s.clusters.orders as { connectTimeoutMs: number }).connectTimeoutMs = 1;
    }).toThrow(TypeError);
  });

  it('carries the version it is given; compileConfig works on a parsed config without a locator', () => {
    const parsed = configSchema.parse({ clusters: [{ name: 'a' }, { name: 'a' }] });
    try {
      compileConfig(parsed, { filters: registry, version: '7', env: {} });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).details).toEqual(["config: clusters[1].name: duplicate cluster name 'a'"]);
      expect((err as ConfigError).code).toBe('CAPA_ERR_CONFIG');
    }
    expect(compileConfig(configSchema.parse({}), { filters: registry, version: '7', env: {} }).version).toBe('7');
  });
});

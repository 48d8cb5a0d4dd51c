/**
 * nameResolution / invocation → Snapshot: the synthesised `invoke|<appId>` clusters (STATIC from
 * static endpoints, STRICT_DNS from the template), the `capa-invocation` listener and its route
 * configuration, precedence between the sources, and errors that name file:line:col and key path.
 */
import { describe, expect, it } from 'vitest';
import { at, errorsOf, load, yaml } from './helpers.js';

const STATIC = yaml`
  nameResolution:
    type: static
    static:
      apps:
        - appId: orders
          endpoints: ["127.0.0.1:9001", {address: 127.0.0.2, port: 9002, weight: 3}]
  `;

describe('invocation config', () => {
  it('without app ids there is no invocation listener and no synthesised cluster', () => {
    const { snapshot } = load('');
    expect(snapshot.invocation).toEqual({ listener: '', timeoutMs: 60_000, apps: [] });
    expect(snapshot.listeners).toEqual([]);
    expect(Object.keys(snapshot.clusters).filter((c) => c.startsWith('invoke|'))).toEqual([]);
  });

  it('static name resolution: a cluster per app id, the loopback OUTBOUND listener, one virtual host per app id', () => {
    const { snapshot } = load(STATIC);
    expect(snapshot.clusters['invoke|orders']).toMatchObject({ type: 'STATIC', lbPolicy: 'ROUND_ROBIN' });
    expect(snapshot.endpoints['invoke|orders']!.endpoints.map((e) => [e.address, e.port, e.weight])).toEqual([
      ['127.0.0.1', 9001, 1],
      ['127.0.0.2', 9002, 3],
    ]);
    const l = snapshot.listeners.find((x) => x.name === 'capa-invocation')!;
    expect(l).toMatchObject({ address: '127.0.0.1', port: 15007, direction: 'OUTBOUND', protocol: 'http', routeConfigName: 'capa-invocation' });
    expect(l.httpFilters.map((f) => f.name)).toEqual(['istio.stats', 'capa.filters.http.access_log', 'envoy.filters.http.router']);
    const vhosts = snapshot.routeConfigs['capa-invocation']!.virtualHosts;
    expect(vhosts.map((v) => [v.name, v.domains])).toEqual([['orders', ['orders']]]);
    const route = vhosts[0]!.routes[0]!;
    expect(route.match.prefix).toBe('/');
    expect(route.action).toMatchObject({ kind: 'route', cluster: 'invoke|orders', timeoutMs: 60_000, retryPolicy: null });
    expect(snapshot.invocation).toEqual({ listener: 'capa-invocation', timeoutMs: 60_000, apps: [{ appId: 'orders', cluster: 'invoke|orders', resolvedBy: 'static' }] });
  });

  it('DNS name resolution fills the template from node.namespace, else POD_NAMESPACE, else "default"', () => {
    const dns = (node: string) => yaml`
      ${node}
      nameResolution:
        dns: { port: 3500, refreshRate: 30s, apps: [billing] }
      `;
    const a = load(dns('node: { namespace: shop }')).snapshot;
    expect(a.clusters['invoke|billing']).toMatchObject({ type: 'STRICT_DNS', dnsRefreshRateMs: 30_000 });
    expect(a.endpoints['invoke|billing']!.endpoints.map((e) => `${e.address}:${e.port}`)).toEqual(['billing.shop.svc.cluster.local:3500']);
    const b = load(dns(''), { POD_NAMESPACE: 'prod' }).snapshot;
    expect(b.endpoints['invoke|billing']!.endpoints[0]!.address).toBe('billing.prod.svc.cluster.local');
    const c = load(yaml`
      nameResolution: { dns: { template: "{appId}-svc.{namespace}.example", apps: [billing] } }
      `).snapshot;
    expect(c.endpoints['invoke|billing']!.endpoints.map((e) => `${e.address}:${e.port}`)).toEqual(['billing-svc.default.example:80']);
  });

  it('invocation.apps wins over static, static over DNS; timeouts and retry policies go on the routes', () => {
    const { snapshot } = load(yaml`
      clusters: [{ name: billing-v2, endpoints: ["127.0.0.1:7000"] }]
      nameResolution:
        dns: { apps: [billing, orders, ship] }
        static: { apps: [{ appId: orders, endpoints: ["127.0.0.1:9001"] }] }
      invocation:
        port: 0
        timeout: 10s
        retryPolicy: { retryOn: "connect-failure,5xx", numRetries: 3 }
        apps:
          - { appId: billing, cluster: billing-v2, timeout: 2s, retryPolicy: { retryOn: reset } }
      `);
    expect(snapshot.invocation.apps).toEqual([
      { appId: 'billing', cluster: 'billing-v2', resolvedBy: 'cluster' },
      { appId: 'orders', cluster: 'invoke|orders', resolvedBy: 'static' },
      { appId: 'ship', cluster: 'invoke|ship', resolvedBy: 'dns' },
    ]);
    expect(snapshot.clusters['invoke|billing']).toBeUndefined();
    expect(snapshot.clusters['invoke|orders']!.type).toBe('STATIC');
    const actions = Object.fromEntries(snapshot.routeConfigs['capa-invocation']!.virtualHosts.map((v) => [v.name, v.routes[0]!.action]));
    expect(actions.billing).toMatchObject({ cluster: 'billing-v2', timeoutMs: 2000, retryPolicy: { retryOn: ['reset'], numRetries: 1 } });
    expect(actions.ship).toMatchObject({ cluster: 'invoke|ship', timeoutMs: 10_000, retryPolicy: { retryOn: ['connect-failure', '5xx'], numRetries: 3 } });
    expect(snapshot.listeners.find((l) => l.name === 'capa-invocation')!.port).toBe(0);
  });

  it('duplicate app ids (case-insensitive) in one list, naming both places', () => {
    const t = yaml`
      nameResolution:
        dns: { apps: [a, b, A] }
        static:
          apps:
            - { appId: s, endpoints: ["127.0.0.1:1"] }
            - { appId: s, endpoints: ["127.0.0.1:2"] }
      `;
    expect(errorsOf(t)).toEqual([
      `${at(t, 'A]')}: nameResolution.dns.apps[2]: duplicate app id 'A' (already at nameResolution.dns.apps[0])`,
      `${at(t, 's,', 1)}: nameResolution.static.apps[1].appId: duplicate app id 's' (already at nameResolution.static.apps[0].appId)`,
    ]);
  });

  it('an unknown cluster in invocation.apps lists the defined ones', () => {
    const t = yaml`
      clusters: [{ name: b, endpoints: ["127.0.0.1:1"] }]
      invocation:
        apps: [{ appId: billing, cluster: nope }]
      `;
    expect(errorsOf(t)).toEqual([`${at(t, 'nope')}: invocation.apps[0].cluster: unknown cluster 'nope' (defined: b)`]);
  });

  it('bad static endpoints are reported where they are written', () => {
    const t = yaml`
      nameResolution:
        static:
          apps:
            - { appId: x, endpoints: ["127.0.0.1:9001", "127.0.0.1"] }
            - { appId: y, endpoints: ["127.0.0.1:70000"] }
      `;
    expect(errorsOf(t)).toEqual([
      `${at(t, '"127.0.0.1"')}: nameResolution.static.apps[0].endpoints[1]: expected "host:port" (IPv6 as "[::1]:8080"), got "127.0.0.1"`,
      `${at(t, '"127.0.0.1:70000"')}: nameResolution.static.apps[1].endpoints[0]: port 70000 is out of range 1-65535`,
    ]);
    const empty = 'nameResolution: { static: { apps: [{ appId: y, endpoints: [] }] } }\n';
    expect(errorsOf(empty)).toEqual([`${at(empty, '[] }')}: nameResolution.static.apps[0].endpoints: expected at least one endpoint`]);
  });

  it('bad app ids, templates, and DNS app ids with type: static', () => {
    const t = yaml`
      nameResolution:
        type: static
        dns: { template: "{app}.svc", apps: [x] }
      invocation:
        apps: [{ appId: "a.b", cluster: c }]
      `;
    expect(errorsOf(t)).toEqual([
      `${at(t, '"{app}.svc"')}: nameResolution.dns.template: unknown placeholder '{app}' in the template (known: {appId}, {namespace})`,
      `${at(t, '"{app}.svc"')}: nameResolution.dns.template: the template must contain '{appId}'`,
      `${at(t, '[x]')}: nameResolution.dns.apps: dns.apps is used only with type: dns (this nameResolution is type: static)`,
      `${at(t, '"a.b"')}: invocation.apps[0].appId: invalid app id "a.b": use letters, digits, '-' and '_' (no dots)`,
    ]);
  });

  it('a template that makes an invalid host name names the app id', () => {
    const t = yaml`
      nameResolution: { dns: { template: "{appId}..x", apps: [pay] } }
      `;
    expect(errorsOf(t)).toEqual([`${at(t, 'pay')}: nameResolution.dns.apps[0]: the DNS template makes "pay..x" for app id 'pay', which is not a valid host name`]);
  });

  it('reserved names and clashes: listener/route names, invoke| cluster names, the port', () => {
    const t = yaml`
      listeners:
        - { name: capa-invocation, port: 15007, routeConfig: r }
      routes:
        - { name: r }
        - { name: capa-invocation }
      clusters:
        - { name: "invoke|orders", endpoints: ["127.0.0.1:1"] }
      nameResolution:
        static: { apps: [{ appId: orders, endpoints: ["127.0.0.1:2"] }, { appId: pay, endpoints: ["127.0.0.1:3"] }] }
      `;
    const errs = errorsOf(t);
    expect(errs).toContain(`${at(t, 'capa-invocation')}: listeners[0].name: listener name 'capa-invocation' is reserved for service invocation`);
    expect(errs).toContain(`${at(t, 'capa-invocation', 1)}: routes[1].name: route configuration name 'capa-invocation' is reserved for service invocation`);
    expect(errs).toContain(
      `${at(t, 'orders, endpoints')}: nameResolution.static.apps[0].appId: app id 'orders' needs the cluster name 'invoke|orders', which clusters: already uses; rename that cluster or map the app id in invocation.apps`,
    );
    // No `invocation.port` key: the clash points at the nearest parent that exists (the file start).
    expect(errs.some((e) => e.includes("invocation.port: listener 'capa-invocation' on 127.0.0.1:15007 clashes with listener 'capa-invocation'"))).toBe(true);
  });
});

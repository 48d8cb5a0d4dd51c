/**
 * nameResolution / invocation → Snapshot: the synthesised `invoke|<appId>` clusters (STATIC from
 * static endpoints, STRICT_DNS from the template), the on-demand `invoke|*` dynamic forward proxy
 * cluster of `type: dns` with its catch-all virtual host, Dapr's `app.namespace` ids, the
 * `capa-invocation` listener and its route configuration, precedence between the sources, and
 * errors that name file:line:col and key path.
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
  it('without a nameResolution or invocation section there is no invocation listener and no synthesised cluster', () => {
    const { snapshot } = load('');
    expect(snapshot.invocation).toEqual({ listener: '', timeoutMs: 60_000, apps: [], onDemandCluster: '' });
    expect(snapshot.listeners).toEqual([]);
    expect(Object.keys(snapshot.clusters).filter((c) => c.startsWith('invoke|'))).toEqual([]);
    // type: static without app ids: nothing is routable either.
    expect(load('nameResolution: { type: static }\n').snapshot.listeners).toEqual([]);
  });

  it('type dns resolves unlisted app ids on demand: one DYNAMIC_FORWARD_PROXY cluster invoke|* behind a catch-all virtual host', () => {
    const { snapshot } = load(yaml`
      node: { namespace: shop }
      nameResolution:
        dns: { port: 3500, refreshRate: 30s, hostTtl: 2m, maxHosts: 64, apps: [billing] }
      invocation: { timeout: 9s, retryPolicy: { retryOn: connect-failure } }
      `);
    expect(snapshot.clusters['invoke|*']).toMatchObject({
      name: 'invoke|*',
      type: 'DYNAMIC_FORWARD_PROXY',
      lbPolicy: 'CLUSTER_PROVIDED',
      dnsRefreshRateMs: 30_000,
      dnsLookupFamily: 'AUTO',
      dynamicForwardProxy: { nameTemplate: '{appId}.{namespace}.svc.cluster.local', defaultNamespace: 'shop', port: 3500, hostTtlMs: 120_000, maxHosts: 64 },
    });
    expect(snapshot.endpoints['invoke|*']).toEqual({ clusterName: 'invoke|*', endpoints: [] });
    // Listed ids keep their own STRICT_DNS cluster.
    expect(snapshot.clusters['invoke|billing']).toMatchObject({ type: 'STRICT_DNS' });
    const vhosts = snapshot.routeConfigs['capa-invocation']!.virtualHosts;
    expect(vhosts.map((v) => [v.name, v.domains])).toEqual([
      ['billing', ['billing', 'billing.shop']],
      ['*', ['*']],
    ]);
    expect(vhosts[1]!.routes[0]!.action).toMatchObject({ kind: 'route', cluster: 'invoke|*', timeoutMs: 9000, retryPolicy: { retryOn: ['connect-failure'] } });
    expect(snapshot.invocation).toEqual({ listener: 'capa-invocation', timeoutMs: 9000, apps: [{ appId: 'billing', cluster: 'invoke|billing', resolvedBy: 'dns' }], onDemandCluster: 'invoke|*' });
    expect(snapshot.listeners.map((l) => l.name)).toEqual(['capa-invocation']);
  });

  it('our own app id reaches our own app (app.address:app.port), as Dapr invokes itself, unless it is listed', () => {
    const { snapshot } = load(yaml`
      node: { namespace: shop }
      app: { id: orders, port: 8080, address: 127.0.0.1 }
      nameResolution: { type: static }
      `);
    expect(snapshot.endpoints['invoke|orders']!.endpoints.map((e) => [e.address, e.port])).toEqual([['127.0.0.1', 8080]]);
    const vhosts = snapshot.routeConfigs['capa-invocation']!.virtualHosts;
    expect(vhosts.map((v) => [v.name, v.domains])).toEqual([['orders', ['orders', 'orders.shop']]]);
    // Listed elsewhere: the listing wins.
    const listed = load(yaml`
      app: { id: orders, port: 8080 }
      nameResolution: { type: static, static: { apps: [{ appId: orders, endpoints: ["127.0.0.9:9000"] }] } }
      `).snapshot;
    expect(listed.endpoints['invoke|orders']!.endpoints.map((e) => [e.address, e.port])).toEqual([['127.0.0.9', 9000]]);
    // No app port, or invocation not configured: nothing.
    expect(load('app: { id: orders }\nnameResolution: { type: static }\n').snapshot.clusters['invoke|orders']).toBeUndefined();
    expect(load('app: { id: orders, port: 8080 }\n').snapshot.clusters['invoke|orders']).toBeUndefined();
  });

  it('an empty nameResolution or invocation section turns invocation on with the DNS defaults (hostTtl 5m, maxHosts 1024, as Envoy)', () => {
    for (const text of ['nameResolution:\n', 'invocation: { port: 0 }\n']) {
      const { snapshot } = load(text, { POD_NAMESPACE: 'prod' });
      expect(snapshot.clusters['invoke|*']!.dynamicForwardProxy).toEqual({ nameTemplate: '{appId}.{namespace}.svc.cluster.local', defaultNamespace: 'prod', port: 80, hostTtlMs: 300_000, maxHosts: 1024 });
      expect(snapshot.clusters['invoke|*']!.dnsRefreshRateMs).toBe(5000);
      expect(snapshot.routeConfigs['capa-invocation']!.virtualHosts.map((v) => v.domains)).toEqual([['*']]);
      expect(snapshot.invocation.apps).toEqual([]);
    }
  });

  it("Dapr's app.namespace ids: app.<own namespace> is the same app, other namespaces are other apps", () => {
    const { snapshot } = load(yaml`
      node: { namespace: shop }
      clusters: [{ name: pay-prod, endpoints: ["127.0.0.1:7000"] }]
      nameResolution:
        dns: { apps: [orders.prod, ship.shop] }
        static: { apps: [{ appId: orders, endpoints: ["127.0.0.1:9001"] }] }
      invocation:
        apps: [{ appId: pay.prod, cluster: pay-prod }]
      `);
    expect(snapshot.endpoints['invoke|orders.prod']!.endpoints.map((e) => e.address)).toEqual(['orders.prod.svc.cluster.local']);
    expect(snapshot.endpoints['invoke|ship.shop']!.endpoints.map((e) => e.address)).toEqual(['ship.shop.svc.cluster.local']);
    const vhosts = snapshot.routeConfigs['capa-invocation']!.virtualHosts;
    expect(vhosts.map((v) => [v.name, v.domains, (v.routes[0]!.action as { cluster: string }).cluster])).toEqual([
      ['pay.prod', ['pay.prod'], 'pay-prod'],
      ['orders', ['orders', 'orders.shop'], 'invoke|orders'],
      ['orders.prod', ['orders.prod'], 'invoke|orders.prod'],
      ['ship.shop', ['ship', 'ship.shop'], 'invoke|ship.shop'],
      ['*', ['*'], 'invoke|*'],
    ]);
    // A static-only sidecar: no catch-all, so orders.<other namespace> is not found (404 NR).
    const st = load(yaml`
      nameResolution: { type: static, static: { apps: [{ appId: orders, endpoints: ["127.0.0.1:9001"] }] } }
      `).snapshot;
    expect(st.routeConfigs['capa-invocation']!.virtualHosts.map((v) => v.domains)).toEqual([['orders', 'orders.default']]);
    expect(st.invocation.onDemandCluster).toBe('');
    expect(st.clusters['invoke|*']).toBeUndefined();
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
    expect(vhosts.map((v) => [v.name, v.domains])).toEqual([['orders', ['orders', 'orders.default']]]);
    const route = vhosts[0]!.routes[0]!;
    expect(route.match.prefix).toBe('/');
    expect(route.action).toMatchObject({ kind: 'route', cluster: 'invoke|orders', timeoutMs: 60_000, retryPolicy: null });
    expect(snapshot.invocation).toEqual({ listener: 'capa-invocation', timeoutMs: 60_000, apps: [{ appId: 'orders', cluster: 'invoke|orders', resolvedBy: 'static' }], onDemandCluster: '' });
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

  it('duplicate app ids (case-insensitive; app.<own namespace> is app) in one list, naming both places', () => {
    const t = yaml`
      nameResolution:
        dns: { apps: [a, b, A, b.default, b.prod] }
        static:
          apps:
            - { appId: s, endpoints: ["127.0.0.1:1"] }
            - { appId: s, endpoints: ["127.0.0.1:2"] }
      `;
    expect(errorsOf(t)).toEqual([
      `${at(t, 'A,')}: nameResolution.dns.apps[2]: duplicate app id 'A' (already at nameResolution.dns.apps[0])`,
      `${at(t, 'b.default')}: nameResolution.dns.apps[3]: duplicate app id 'b.default' (already at nameResolution.dns.apps[1])`,
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

  it('bad app ids (Dapr: one dot at most), templates, DNS cache bounds, and DNS app ids with type: static', () => {
    const t = yaml`
      nameResolution:
        type: static
        dns: { template: "{app}.svc", apps: [x], hostTtl: 0s, maxHosts: 0 }
      invocation:
        apps: [{ appId: "a.b.c", cluster: c }, { appId: "a.", cluster: c }]
      `;
    const rule = "an app id is letters, digits, '-' and '_', optionally followed by '.<namespace>' (Dapr's app.namespace form)";
    expect(errorsOf(t)).toEqual([
      `${at(t, '"{app}.svc"')}: nameResolution.dns.template: unknown placeholder '{app}' in the template (known: {appId}, {namespace})`,
      `${at(t, '"{app}.svc"')}: nameResolution.dns.template: the template must contain '{appId}'`,
      `${at(t, '[x]')}: nameResolution.dns.apps: dns.apps is used only with type: dns (this nameResolution is type: static)`,
      `${at(t, '0s')}: nameResolution.dns.hostTtl: must be greater than 0`,
      `${at(t, '0 }')}: nameResolution.dns.maxHosts: expected a host count 1-1000000`,
      `${at(t, '"a.b.c"')}: invocation.apps[0].appId: invalid app id "a.b.c": ${rule}`,
      `${at(t, '"a."')}: invocation.apps[1].appId: invalid app id "a.": ${rule}`,
    ]);
  });

  it('a template that makes an invalid host name names the app id', () => {
    const t = yaml`
      nameResolution: { dns: { template: "{appId}..x", apps: [pay] } }
      `;
    expect(errorsOf(t)).toEqual([`${at(t, 'pay')}: nameResolution.dns.apps[0]: the DNS template makes "pay..x" for app id 'pay', which is not a valid host name`]);
  });

  it('invoke|* is reserved when type dns resolves on demand', () => {
    const t = yaml`
      clusters:
        - { name: "invoke|*", endpoints: ["127.0.0.1:1"] }
      nameResolution: { dns: { apps: [pay] } }
      `;
    expect(errorsOf(t)).toEqual([`${at(t, '"invoke|*"')}: clusters[0].name: cluster name 'invoke|*' is reserved for service invocation (nameResolution type dns resolves unlisted app ids through it)`]);
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

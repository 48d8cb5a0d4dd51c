import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startAdminServer } from '../../../src/admin/server.js';
import type { AdminServer, AdminSources, ClusterStatus } from '../../../src/admin/types.js';
import { createLogger, setLogLevel } from '../../../src/observability/logger.js';
import { IstioMetrics } from '../../../src/observability/metrics.js';
import { newStreamInfo } from '../../../src/proxy/stream-info.js';

const CLUSTERS: ClusterStatus[] = [
  {
    name: 'backend',
    type: 'STATIC',
    lbPolicy: 'ROUND_ROBIN',
    hosts: [
      { address: '127.0.0.1', port: 8080, weight: 1, healthy: true, healthFlags: '', stats: { rqTotal: 7, rqError: 2, rqActive: 1, cxTotal: 3, cxActive: 2, cxConnectFail: 1, rqTimeout: 1 } },
      { address: '::1', port: 8081, weight: 3, healthy: false, healthFlags: '', stats: { rqTotal: 0, rqError: 0, rqActive: 0, cxTotal: 0, cxActive: 0, cxConnectFail: 4, rqTimeout: 0 } },
    ],
  },
];

const SNAPSHOT = {
  version: '3',
  source: 'yaml',
  node: { id: 'node-1', cluster: 'c', workloadName: 'w', namespace: 'ns', canonicalService: 's', canonicalRevision: 'r', meshId: 'm' },
  listeners: [{ name: 'l1', address: '0.0.0.0', port: 15001 }],
  routeConfigs: { r1: { name: 'r1', virtualHosts: [] } },
  clusters: { backend: { name: 'backend', type: 'STATIC' } },
  endpoints: { backend: { clusterName: 'backend', endpoints: [{ address: '127.0.0.1', port: 8080 }] } },
  secrets: { cert: { privateKey: '-----BEGIN PRIVATE KEY-----abc', certChain: 'CERT' } },
};

function silentSink(): Writable {
  return new Writable({ write: (_c, _e, cb) => cb() });
}

interface Harness {
  server: AdminServer;
  base: string;
  state: { ready: boolean; quits: number };
  logger: ReturnType<typeof createLogger>;
}

let open: AdminServer[] = [];
afterEach(async () => {
  await Promise.all(open.map((s) => s.close()));
  open = [];
});

async function start(extra: Partial<AdminSources> = {}): Promise<Harness> {
  const logger = createLogger('info', { destination: silentSink() });
  const registry = new Registry();
  IstioMetrics.for(registry, SNAPSHOT.node).recordHttp(Object.assign(newStreamInfo(), { upstreamCluster: 'backend', responseCode: 200 }));
  const state = { ready: false, quits: 0 };
  const sources: AdminSources = {
    snapshot: () => SNAPSHOT,
    rawConfig: () => ({ yaml: 'listeners: []' }),
    clusters: () => CLUSTERS,
    ready: () => state.ready,
    metrics: () => registry.metrics(),
    metricsContentType: registry.contentType,
    setLogLevel: (level) => setLogLevel(logger, level),
    getLogLevel: () => logger.level,
    quit: () => {
      state.quits++;
    },
    ...extra,
  };
  const server = await startAdminServer({ host: '127.0.0.1', port: 0, sources, logger, version: '9.9.9' });
  open.push(server);
  return { server, base: `http://127.0.0.1:${server.port}`, state, logger };
}

async function get(url: string, method = 'GET'): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(url, { method });
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

describe('admin server', () => {
  it('binds an ephemeral port', async () => {
    const h = await start();
    expect(h.server.port).toBeGreaterThan(0);
  });

  it('/ready and /healthz flip with sources.ready()', async () => {
    const h = await start();
    for (const p of ['/ready', '/healthz']) expect(await get(h.base + p)).toMatchObject({ status: 503, text: 'PRE_INITIALIZING\n' });
    h.state.ready = true;
    for (const p of ['/ready', '/healthz']) expect(await get(h.base + p)).toMatchObject({ status: 200, text: 'LIVE\n' });
  });

  it('/ready reports DRAINING from sources.state()', async () => {
    const h = await start({ state: () => 'DRAINING' });
    expect(await get(`${h.base}/ready`)).toMatchObject({ status: 503, text: 'DRAINING\n' });
  });

  it('/server_info is JSON with state, version and uptime', async () => {
    const h = await start();
    h.state.ready = true;
    const r = await get(`${h.base}/server_info`);
    expect(r.status).toBe(200);
    expect(r.type).toContain('application/json');
    const info = JSON.parse(r.text) as Record<string, unknown>;
    expect(info).toMatchObject({ version: '9.9.9', state: 'LIVE', node: { id: 'node-1' } });
    expect(info.uptime_current_epoch).toMatch(/^\d+s$/);
  });

  it('/config_dump is Envoy-shaped JSON with version_info, secrets redacted', async () => {
    const h = await start();
    const r = await get(`${h.base}/config_dump`);
    expect(r.status).toBe(200);
    const dump = JSON.parse(r.text) as { configs: Record<string, any>[] };
    const types = dump.configs.map((c) => c['@type']);
    expect(types).toEqual([
      'type.googleapis.com/envoy.admin.v3.BootstrapConfigDump',
      'type.googleapis.com/envoy.admin.v3.ClustersConfigDump',
      'type.googleapis.com/envoy.admin.v3.ListenersConfigDump',
      'type.googleapis.com/envoy.admin.v3.RoutesConfigDump',
      'type.googleapis.com/capa.admin.v1.RawConfigDump',
    ]);
    const clusters = dump.configs[1]!;
    expect(clusters.version_info).toBe('3');
    expect(clusters.dynamic_active_clusters[0].cluster.name).toBe('backend');
    expect(dump.configs[2]!.dynamic_listeners[0]).toMatchObject({ name: 'l1', active_state: { version_info: '3' } });
    expect(dump.configs[4]!.raw).toEqual({ yaml: 'listeners: []' });
    const withEds = JSON.parse((await get(`${h.base}/config_dump?include_eds`)).text) as { configs: Record<string, any>[] };
    expect(withEds.configs.find((c) => c['@type'].endsWith('EndpointsConfigDump'))!.dynamic_endpoint_configs[0].endpoint_config.clusterName).toBe('backend');
    const only = JSON.parse((await get(`${h.base}/config_dump?resource=dynamic_active_clusters`)).text) as { configs: Record<string, any>[] };
    expect(only.configs).toHaveLength(1);
    expect(r.text).not.toContain('BEGIN PRIVATE KEY');
  });

  it("/clusters prints Envoy's text format and JSON", async () => {
    const h = await start();
    const r = await get(`${h.base}/clusters`);
    expect(r.status).toBe(200);
    const lines = r.text.trim().split('\n');
    expect(lines).toContain('backend::observability_name::backend');
    expect(lines).toContain('backend::127.0.0.1:8080::health_flags::healthy');
    expect(lines).toContain('backend::127.0.0.1:8080::rq_total::7');
    expect(lines).toContain('backend::127.0.0.1:8080::rq_success::4');
    expect(lines).toContain('backend::127.0.0.1:8080::cx_active::2');
    expect(lines).toContain('backend::127.0.0.1:8080::cx_connect_fail::1');
    expect(lines).toContain('backend::127.0.0.1:8080::weight::1');
    expect(lines).toContain('backend::[::1]:8081::health_flags::/failed_active_hc');
    expect(lines).toContain('backend::[::1]:8081::weight::3');
    for (const l of lines) expect(l).toMatch(/^backend::/);
    const j = await get(`${h.base}/clusters?format=json`);
    expect(j.type).toContain('application/json');
    const body = JSON.parse(j.text) as { cluster_statuses: any[] };
    const host = body.cluster_statuses[0].host_statuses[0];
    expect(host.address).toEqual({ socket_address: { address: '127.0.0.1', port_value: 8080 } });
    expect(host.stats).toContainEqual({ name: 'rq_total', value: '7' });
    expect(host.stats).toContainEqual({ type: 'GAUGE', name: 'cx_active', value: '2' });
    expect(host.health_status.eds_health_status).toBe('HEALTHY');
    expect(body.cluster_statuses[0].host_statuses[1].health_status.eds_health_status).toBe('UNHEALTHY');
  });

  it('/stats and /stats/prometheus serve the Prometheus text', async () => {
    const h = await start();
    for (const p of ['/stats', '/stats/prometheus']) {
      const r = await get(h.base + p);
      expect(r.status).toBe(200);
      expect(r.type).toContain('text/plain');
      expect(r.text).toContain('# TYPE istio_requests_total counter');
      expect(r.text).toContain('destination_service="backend"');
    }
  });

  it('/logging prints and changes the level of a real pino logger', async () => {
    const h = await start();
    expect(await get(`${h.base}/logging`)).toMatchObject({ status: 200, text: 'active loggers:\n  capa: info\n' });
    expect(await get(`${h.base}/logging?level=debug`, 'POST')).toMatchObject({ status: 200, text: 'active loggers:\n  capa: debug\n' });
    expect(h.logger.level).toBe('debug');
    expect(h.logger.isLevelEnabled('debug')).toBe(true);
    await get(`${h.base}/logging?level=warning`, 'POST');
    expect(h.logger.level).toBe('warn');
    await get(`${h.base}/logging?level=off`, 'POST');
    expect(h.logger.level).toBe('silent');
  });

  it('/logging rejects unknown levels (400, naming them) and GET with a level (405)', async () => {
    const h = await start();
    const bad = await get(`${h.base}/logging?level=loud`, 'POST');
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('loud');
    expect(bad.text).toMatch(/trace, debug, info, warn, warning, error, critical/);
    expect(h.logger.level).toBe('info');
    expect((await get(`${h.base}/logging?level=debug`)).status).toBe(405);
    expect((await get(`${h.base}/logging?level=debug`, 'PUT')).status).toBe(405);
    expect(h.logger.level).toBe('info');
  });

  it('POST /quitquitquit answers OK then calls quit; GET is 405', async () => {
    const h = await start();
    h.state.ready = true;
    expect((await get(`${h.base}/quitquitquit`)).status).toBe(405);
    expect(h.state.quits).toBe(0);
    expect(await get(`${h.base}/quitquitquit`, 'POST')).toMatchObject({ status: 200, text: 'OK\n' });
    await new Promise((r) => setTimeout(r, 20));
    expect(h.state.quits).toBe(1);
    expect(await get(`${h.base}/ready`)).toMatchObject({ status: 503, text: 'DRAINING\n' });
  });

  it('404 lists the known endpoints', async () => {
    const h = await start();
    const r = await get(`${h.base}/nope`);
    expect(r.status).toBe(404);
    for (const p of ['/clusters', '/config_dump', '/healthz', '/logging', '/quitquitquit', '/ready', '/server_info', '/stats', '/stats/prometheus']) {
      expect(r.text).toContain(`  ${p}: `);
    }
    expect((await get(`${h.base}/help`)).status).toBe(200);
  });

  it('serves extra handlers and turns a throwing source into a 500', async () => {
    const h = await start({
      extraHandlers: { '/debug/pools': (_req, res) => res.end('pools\n') },
      clusters: () => {
        throw new Error('boom');
      },
    });
    expect(await get(`${h.base}/debug/pools`)).toMatchObject({ status: 200, text: 'pools\n' });
    expect((await get(`${h.base}/nope`)).text).toContain('/debug/pools');
    expect((await get(`${h.base}/clusters`)).status).toBe(500);
  });

  it('close() resolves and frees the port', async () => {
    const h = await start();
    await h.server.close();
    await expect(fetch(`${h.base}/ready`)).rejects.toThrow();
  });
});

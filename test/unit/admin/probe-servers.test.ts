import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { startMetricsServer, startReadinessServer } from '../../../src/admin/probe-servers.js';
import type { ListeningServer } from '../../../src/admin/types.js';
import { IstioMetrics } from '../../../src/observability/metrics.js';
import { newStreamInfo } from '../../../src/proxy/stream-info.js';

let open: ListeningServer[] = [];
afterEach(async () => {
  await Promise.all(open.map((s) => s.close()));
  open = [];
});

describe('metrics server', () => {
  it('serves the exposition on each configured path, 404 elsewhere', async () => {
    const registry = new Registry();
    IstioMetrics.for(registry, { id: 'n', cluster: 'c', workloadName: 'w', namespace: 'ns', canonicalService: 's', canonicalRevision: 'r', meshId: 'm' }).recordHttp(
      Object.assign(newStreamInfo(), { upstreamCluster: 'b', responseCode: 204 }),
    );
    const s = await startMetricsServer('127.0.0.1', 0, ['/stats/prometheus', '/metrics'], { metrics: () => registry.metrics(), metricsContentType: registry.contentType });
    open.push(s);
    for (const p of ['/stats/prometheus', '/metrics']) {
      const res = await fetch(`http://127.0.0.1:${s.port}${p}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(registry.contentType);
      expect(await res.text()).toContain('response_code="204"');
    }
    expect((await fetch(`http://127.0.0.1:${s.port}/other`)).status).toBe(404);
    expect((await fetch(`http://127.0.0.1:${s.port}/metrics`, { method: 'POST' })).status).toBe(405);
  });
});

describe('readiness server', () => {
  it('answers /healthz/ready with 200 when ready and 503 otherwise', async () => {
    let ready = false;
    const s = await startReadinessServer('127.0.0.1', 0, { ready: () => ready });
    open.push(s);
    const url = `http://127.0.0.1:${s.port}/healthz/ready`;
    expect((await fetch(url)).status).toBe(503);
    ready = true;
    expect((await fetch(url)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${s.port}/ready`)).status).toBe(404);
  });
});

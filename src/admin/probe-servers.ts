/**
 * The two small servers Kubernetes and Prometheus talk to: metrics (15090 `/stats/prometheus`,
 * and `sidecar.metricsPort` `/metrics`) and readiness (15021 `/healthz/ready`).
 */
import { createServer, type ServerResponse } from 'node:http';
import { listen } from './listen.js';
import type { AdminSources, ListeningServer } from './types.js';

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(body);
}

export type MetricsSources = Pick<AdminSources, 'metrics' | 'metricsContentType'>;
export type ReadinessSources = Pick<AdminSources, 'ready'>;

export async function startMetricsServer(host: string, port: number, paths: readonly string[], sources: MetricsSources): Promise<ListeningServer> {
  const served = new Set(paths);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (!served.has(path)) return send(res, 404, `not found; metrics are at ${paths.join(', ')}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'use GET\n');
    sources.metrics().then(
      (text) => send(res, 200, text, sources.metricsContentType),
      () => send(res, 500, 'collecting metrics failed\n'),
    );
  });
  return listen(server, host, port);
}

export const READINESS_PATH = '/healthz/ready';

export async function startReadinessServer(host: string, port: number, sources: ReadinessSources): Promise<ListeningServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    if (path !== READINESS_PATH) return send(res, 404, `not found; readiness is at ${READINESS_PATH}\n`);
    if (sources.ready()) send(res, 200, '');
    else send(res, 503, 'not ready\n');
  });
  return listen(server, host, port);
}

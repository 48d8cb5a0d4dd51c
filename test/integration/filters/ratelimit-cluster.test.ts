import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnCli, waitReady, writeTempConfig, type Spawned } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { freePort, request, sleep, type Reply } from '../../helpers/http.js';

/** Needs the primary's wiring in src/sidecar.ts startWorkers(): setupRateLimiterPrimary(). */
describe('local rate limit with --concurrency 2 (worker processes)', () => {
  let up: Upstream;
  let cli: Spawned;
  let port = 0;
  beforeAll(async () => {
    up = await startUpstream('up');
    port = await freePort();
    const adminPort = await freePort();
    const file = writeTempConfig(`
sidecar: { port: 0, grpcPort: 0, metricsPort: 0, adminPort: ${adminPort}, prometheusPort: 0, readinessPort: 0 }
listeners:
  - name: main
    address: 127.0.0.1
    port: ${port}
    httpFilters:
      - name: envoy.filters.http.local_ratelimit
        config: { requestsPerUnit: 10 }
      - name: envoy.filters.http.router
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - name: rest
              match: { prefix: / }
              route: { cluster: up }
clusters:
  - name: up
    endpoints: ["127.0.0.1:${up.port}"]
`);
    cli = spawnCli(['--config', file, '--concurrency', '2', '--log-level', 'warn']);
    await waitReady(adminPort, 15_000);
  });
  afterAll(async () => {
    cli.kill('SIGTERM');
    await cli.exited;
    await up.close();
  });

  it('the workers share one limit: 10 req/s stays within ±10% at 200 req/s offered', async () => {
    // Many keep-alive connections, so both workers accept some of them.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
    const rate = 200;
    const n = (rate * 2000) / 1000;
    const t0 = performance.now();
    const all: Promise<Reply>[] = [];
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      all.push(request(port, { path: '/x', agent }));
    }
    const replies = await Promise.all(all);
    agent.destroy();
    const ok = replies.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThanOrEqual(18);
    expect(ok).toBeLessThanOrEqual(22);
    expect(replies.filter((r) => r.status === 429)).toHaveLength(n - ok);
    expect(cli.stderr.join('') + cli.stdout.join('')).not.toContain('did not call setupRateLimiterPrimary');
  });
});

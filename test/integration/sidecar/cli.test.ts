import { describe, expect, it } from 'vitest';
import { spawnCli, writeTempConfig, waitReady } from '../../helpers/sidecar.js';
import { freePort, request, sleep } from '../../helpers/http.js';
import { startUpstream } from '../../helpers/upstream.js';

async function ports() {
  return { admin: await freePort(), prom: await freePort(), metrics: await freePort(), ready: await freePort(), api: await freePort(), grpc: await freePort(), listen: await freePort() };
}

function yaml(p: Awaited<ReturnType<typeof ports>>, upstreamPort: number, extra = ''): string {
  return `
sidecar: { port: ${p.api}, grpcPort: ${p.grpc}, adminPort: ${p.admin}, prometheusPort: ${p.prom}, metricsPort: ${p.metrics}, readinessPort: ${p.ready} }
drainTime: 5s
${extra}
listeners:
  - name: main
    address: 127.0.0.1
    port: ${p.listen}
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes:
            - match: { prefix: / }
              route: { cluster: up }
clusters:
  - name: up
    endpoints: ["127.0.0.1:${upstreamPort}"]
`;
}

describe('capa-runtime CLI', () => {
  it('--help prints the usage and exits 0', async () => {
    const p = spawnCli(['--help']);
    expect(await p.exited).toBe(0);
    expect(p.stdout.join('')).toContain('--validate');
  });

  it('rejects an unknown flag with exit code 2', async () => {
    const p = spawnCli(['--bogus']);
    expect(await p.exited).toBe(2);
    expect(p.stderr.join('')).toContain('--bogus');
  });

  it('--validate exits 0 for a valid file and 1 naming file:line:col for a bad one', async () => {
    const good = writeTempConfig(yaml(await ports(), 1));
    const ok = spawnCli(['--config', good, '--validate']);
    expect(await ok.exited).toBe(0);
    const bad = writeTempConfig('clusters:\n  - name: x\n    connectTimeout: soon\n    endpoints: ["127.0.0.1:1"]\n');
    const no = spawnCli(['--config', bad, '--validate']);
    expect(await no.exited).toBe(1);
    expect(no.stderr.join('')).toMatch(/sidecar\.yaml:3:\d+: clusters\[0\]\.connectTimeout: .*duration/);
  });

  it('refuses to start on an invalid file, exit 1 with the reason', async () => {
    const bad = writeTempConfig('listeners:\n  - name: l\n    port: 99999\n');
    const p = spawnCli(['--config', bad]);
    expect(await p.exited).toBe(1);
    expect(p.stderr.join('')).toMatch(/sidecar\.yaml:3:\d+: listeners\[0\]\.port/);
  });

  it('drains on SIGTERM: in-flight requests finish, then exit 0', async () => {
    const up = await startUpstream('slow', (_req, res) => setTimeout(() => res.end('done'), 800));
    const p = await ports();
    const cli = spawnCli(['--config', writeTempConfig(yaml(p, up.port))]);
    try {
      await waitReady(p.admin);
      const inflight = request(p.listen, { path: '/slow' });
      await sleep(200);
      cli.kill('SIGTERM');
      await sleep(100);
      const r = await inflight;
      expect(r.status).toBe(200);
      expect(r.body).toBe('done');
      expect(r.headers.connection).toBe('close');
      await expect(request(p.listen, { timeoutMs: 1000 })).rejects.toThrow();
      expect(await cli.exited).toBe(0);
    } finally {
      cli.kill();
      await up.close();
    }
  });

  it('reloads on SIGHUP and POST /quitquitquit exits 0', async () => {
    const up = await startUpstream('u');
    const p = await ports();
    const file = writeTempConfig(yaml(p, up.port, 'logLevel: info'));
    const cli = spawnCli(['--config', file]);
    try {
      await waitReady(p.admin);
      expect((await request(p.listen)).status).toBe(200);
      cli.kill('SIGHUP');
      await sleep(300);
      expect(cli.child.exitCode).toBeNull();
      expect(cli.stderr.join('')).toContain('SIGHUP');
      const q = await request(p.admin, { method: 'POST', path: '/quitquitquit' });
      expect(q.status).toBe(200);
      expect(await cli.exited).toBe(0);
    } finally {
      cli.kill();
      await up.close();
    }
  });

  it('runs 2 data-plane workers with --concurrency 2 and aggregates their metrics', async () => {
    const up = await startUpstream('u');
    const p = await ports();
    const cli = spawnCli(['--config', writeTempConfig(yaml(p, up.port)), '--concurrency', '2']);
    try {
      await waitReady(p.admin, 15_000);
      const n = 100;
      const results = await Promise.all(Array.from({ length: n }, () => request(p.listen)));
      expect(results.every((r) => r.status === 200)).toBe(true);
      const prom = (await request(p.prom, { path: '/stats/prometheus' })).body;
      const total = prom
        .split('\n')
        .filter((l) => l.startsWith('istio_requests_total{') && l.includes('response_code="200"'))
        .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
      expect(total).toBe(n);
      const clusters = (await request(p.admin, { path: '/clusters' })).body;
      expect(clusters).toContain(`up::127.0.0.1:${up.port}::rq_total::`);
      // /tcpcopy is relayed to every worker process.
      const tc = await request(p.admin, { method: 'POST', path: '/tcpcopy?enabled=true&rate=0.5' });
      expect(tc.status).toBe(200);
      const workers = JSON.parse(tc.body).workers as { enabled: boolean; sampleRate: number }[];
      expect(workers).toHaveLength(2);
      for (const w of workers) expect(w).toMatchObject({ enabled: true, sampleRate: 0.5 });
      expect((await request(p.admin, { method: 'POST', path: '/tcpcopy?rate=2' })).status).toBe(400);
      cli.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
    } finally {
      cli.kill();
      await up.close();
    }
  });
});

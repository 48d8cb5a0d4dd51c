import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSidecar, type Running } from '../../helpers/sidecar.js';
import { startUpstream, type Upstream } from '../../helpers/upstream.js';
import { request, sleep, waitFor, type Reply } from '../../helpers/http.js';
import { admin, parseSamples } from '../../helpers/traffic.js';

/** Offer `rate` req/s for `ms`, paced on absolute times, over keep-alive connections. */
async function offer(port: number, rate: number, ms: number, opts: { path: string; method?: string }): Promise<Reply[]> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const n = Math.floor((rate * ms) / 1000);
  const t0 = performance.now();
  const all: Promise<Reply>[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const wait = t0 + (i * 1000) / rate - performance.now();
      if (wait > 0) await sleep(wait);
      all.push(request(port, { ...opts, agent }));
    }
    return await Promise.all(all);
  } finally {
    agent.destroy();
  }
}

const ok = (rs: Reply[]): number => rs.filter((r) => r.status === 200).length;

const policy = (rpu: number | string) => `# orders API reads
apiVersion: capa.io/v1
kind: FlowControlPolicy
metadata: { name: api-read }
spec:
  match: { paths: [{ prefix: /api/ }], methods: [GET] }
  rateLimit: { requestsPerUnit: ${rpu}, unit: second }
---
apiVersion: capa.io/v1
kind: FlowControlPolicy
metadata: { name: slow-down }
spec:
  match: { paths: [{ exact: /never }] }
  fault: { delay: { fixed: 10ms, percent: 100 } }
`;

interface PoliciesBody {
  policies: { name: string; source: string; stale: boolean; spec: { rateLimit?: { requestsPerUnit: number } }; counters: Record<string, number> }[];
  rejected: { name: string; source: string; errors: string[]; keptPrevious: boolean }[];
}

describe('flow-control policies through a real sidecar', () => {
  let up: Upstream;
  let sc: Running;
  let dir: string;
  let file: string;
  const policies = async (): Promise<PoliciesBody> => JSON.parse((await admin(sc.sidecar.adminPort, '/policies')).body) as PoliciesBody;
  const rpu = async (): Promise<number | undefined> => (await policies()).policies.find((p) => p.name === 'api-read')?.spec.rateLimit?.requestsPerUnit;

  beforeAll(async () => {
    up = await startUpstream('up');
    dir = mkdtempSync(join(tmpdir(), 'capa-policies-'));
    file = join(dir, 'policies.yaml');
    writeFileSync(file, policy(10));
    sc = await startSidecar(`
flowControl: { policyDirs: [${dir}] }
listeners:
  - name: main
    address: 127.0.0.1
    port: 0
    routes:
      virtualHosts:
        - name: all
          domains: ["*"]
          routes: [{ match: { prefix: / }, route: { cluster: up } }]
clusters:
  - name: up
    endpoints: ["127.0.0.1:${up.port}"]
`);
  });
  afterAll(async () => {
    await sc?.stop();
    await up?.close();
  });

  it('limits GET /api/ to 10 req/s with 429 while POST and other paths pass; /policies and the metric count it', async () => {
    const [get, post, other] = await Promise.all([
      offer(sc.port('main'), 50, 2000, { path: '/api/orders' }),
      offer(sc.port('main'), 20, 2000, { path: '/api/orders', method: 'POST' }),
      offer(sc.port('main'), 20, 2000, { path: '/health' }),
    ]);
    // fixed 1 s windows opened by the first request: 2 windows in 2 s → 20
    expect(ok(get)).toBeGreaterThanOrEqual(18);
    expect(ok(get)).toBeLessThanOrEqual(22);
    const limited = get.filter((r) => r.status === 429);
    expect(ok(get) + limited.length).toBe(get.length);
    expect(limited[0]!.headers['retry-after']).toBeDefined();
    expect(ok(post)).toBe(post.length);
    expect(ok(other)).toBe(other.length);

    const body = await policies();
    expect(body.policies.map((p) => p.name)).toEqual(['api-read', 'slow-down']);
    expect(body.policies[0]).toMatchObject({ source: file, stale: false, counters: { passed: ok(get), limited: limited.length, rejected: 0 } });
    expect(body.rejected).toEqual([]);
    const prom = (await admin(sc.sidecar.adminPort, '/stats/prometheus')).body;
    const samples = parseSamples(prom, 'capa_flowcontrol_requests_total').filter((s) => s.labels.policy === 'api-read');
    expect(samples.find((s) => s.labels.decision === 'passed')?.value).toBe(ok(get));
    expect(samples.find((s) => s.labels.decision === 'limited')?.value).toBe(limited.length);
  });

  it('an edit of the policy file while traffic flows changes the limit within 2 s', async () => {
    const traffic = offer(sc.port('main'), 40, 3000, { path: '/api/orders' });
    await sleep(500);
    const t0 = performance.now();
    writeFileSync(file, policy(30));
    await waitFor(async () => (await rpu()) === 30, 2000, 50);
    expect(performance.now() - t0).toBeLessThan(2000);
    await traffic;
    await sleep(1100); // let the new limiter's current window end
    const after = await offer(sc.port('main'), 60, 1000, { path: '/api/orders' });
    expect(ok(after)).toBeGreaterThanOrEqual(27);
    expect(ok(after)).toBeLessThanOrEqual(33);
  });

  it('an invalid edit does not change the limit and /policies shows the error', async () => {
    writeFileSync(file, policy('"lots"'));
    await waitFor(async () => (await policies()).rejected.length > 0, 2000, 50);
    const body = await policies();
    expect(body.rejected).toHaveLength(1);
    expect(body.rejected[0]).toMatchObject({ name: 'api-read', source: file, keptPrevious: true });
    expect(body.rejected[0]!.errors[0]).toMatch(new RegExp(`^${file.replace(/[.\\/]/g, '\\$&')}:7:33: spec\\.rateLimit\\.requestsPerUnit: `));
    expect(body.policies.find((p) => p.name === 'api-read')).toMatchObject({ stale: true, spec: { rateLimit: { requestsPerUnit: 30 } } });
    await sleep(1100);
    const after = await offer(sc.port('main'), 60, 1000, { path: '/api/orders' });
    expect(ok(after)).toBeGreaterThanOrEqual(27);
    expect(ok(after)).toBeLessThanOrEqual(33);
    // fixing it clears the rejection
    writeFileSync(file, policy(30));
    await waitFor(async () => (await policies()).rejected.length === 0, 2000, 50);
    expect((await policies()).policies[0]!.stale).toBe(false);
  });
});

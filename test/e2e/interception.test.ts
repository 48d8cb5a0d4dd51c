/**
 * Transparent interception end to end, on the real kernel with the real rules (issue 4, "Tests").
 *
 * Two network namespaces made by this suite, joined by a veth pair (10.250.X.0/24, chosen per run):
 *   capa-app-*  the "pod": the capture rules (`node dist/main.js iptables`, Istio's flags), the
 *               sidecar (`node dist/main.js --config`, as UID 1337 via setpriv) and an HTTP "app"
 *               on 0.0.0.0:APP (as root);
 *   capa-srv-*  a "server" host: HTTP servers, a raw TCP echo and a gRPC server (@grpc/grpc-js).
 * Clients are unmodified (curl, http.get, grpc-js, net.connect) and run in the namespaces with
 * `ip netns exec`. Nothing leaves loopback or these namespaces; the host's own iptables and links
 * are never touched. Needs root; fails (never skips) without namespaces. Namespaces and the
 * processes in them are removed in afterAll whatever happened, and leftovers of a crashed run in
 * beforeAll.
 */
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createTopology, deleteNamespace, inNs, removeLeftovers, sh, spawnInNs, type NsProcess, type Topology } from './helpers/netns.js';
import { seriesOf, sumOf } from './helpers/prom.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'dist', 'main.js');
const ADDON = join(ROOT, 'native', 'build', 'Release', 'original_dst.node');
const SERVERS = fileURLToPath(new URL('./helpers/servers.mjs', import.meta.url));
const CLIENT = fileURLToPath(new URL('./helpers/client.mjs', import.meta.url));
const PROTO = fileURLToPath(new URL('./fixtures/echo.proto', import.meta.url));
const NODE = process.execPath;

const PROXY_UID = 1337;
/** Ports inside the namespaces (fresh namespaces: every port is free). */
const APP = 8000; // the app beside the sidecar (inbound capture)
const HTTP = 8080; // server HTTP, captured
const HTTP_EXCLUDED = 8081; // server HTTP, excluded with -o
const ECHO = 9000; // server raw TCP echo
const GRPC = 50051; // server gRPC
const TCP_BYTES = 64 * 1024;

const run = randomBytes(3).toString('hex'); // tags paths, so lines of this run are unambiguous

let topo: Topology | null = null;
const namespaces: string[] = [];
let dir = '';
let accessLogPath = '';
let servers: NsProcess | null = null;
let app: NsProcess | null = null;
let sidecar: NsProcess | null = null;
const t0 = Date.now();

/**
 * Why the set-up failed. Each test then fails with it (rather than vitest reporting the tests as
 * skipped after a failed hook): this suite never skips.
 */
let setupError: Error | null = null;

function t(): Topology {
  if (setupError !== null) throw setupError;
  if (topo === null) throw new Error('topology not set up (see beforeAll)');
  return topo;
}

/** The sidecar's own output, for failure messages. */
function proxyLogs(): string {
  if (sidecar === null) return '(sidecar not started)';
  const tail = (s: string) => (s.length > 6000 ? `...${s.slice(-6000)}` : s);
  return `--- sidecar stderr ---\n${tail(sidecar.stderr())}\n--- sidecar stdout ---\n${tail(sidecar.stdout())}`;
}

interface HttpResult {
  status: number;
  body?: string;
  error?: string;
}
interface Seen {
  who: string;
  port: number;
  path: string;
  peer: string;
  host: string | null;
  xff: string | null;
}

async function client<T>(ns: string, cfg: Record<string, unknown>): Promise<T> {
  const out = await inNs(ns, NODE, [CLIENT, JSON.stringify(cfg)], 20_000);
  return JSON.parse(out) as T;
}

/** Unmodified curl in a namespace: status code and body. */
async function curl(ns: string, url: string): Promise<{ status: number; body: string }> {
  const out = await inNs(ns, 'curl', ['-sS', '-m', '8', '-w', '\n%{http_code}', url], 15_000);
  const i = out.lastIndexOf('\n');
  return { status: Number(out.slice(i + 1)), body: out.slice(0, i) };
}

function accessLog(): Record<string, unknown>[] {
  if (!existsSync(accessLogPath)) return [];
  return readFileSync(accessLogPath, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const linesFor = (path: string) => accessLog().filter((l) => l.path === path);

/** The access log is written asynchronously in batches: wait for `path` to show up. */
async function waitLog(path: string, count = 1, timeoutMs = 5000): Promise<Record<string, unknown>[]> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const l = linesFor(path);
    if (l.length >= count) return l;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`access log has ${linesFor(path).length} line(s) for ${path} after ${timeoutMs}ms (want ${count})\n${proxyLogs()}`);
}

async function metrics(): Promise<string> {
  return inNs(t().app, 'curl', ['-sS', '-m', '5', 'http://127.0.0.1:15090/stats/prometheus']);
}

async function natRules(): Promise<{ v4: string; v6: string }> {
  const v4 = await inNs(t().app, 'iptables-save', ['-t', 'nat']);
  const v6 = await inNs(t().app, 'ip6tables-save', ['-t', 'nat']).catch((e: Error) => `(ip6tables-save failed: ${e.message})`);
  return { v4, v6 };
}

describe('transparent interception: iptables capture in a network namespace, sidecar as UID 1337', () => {
  beforeAll(async () => {
    try {
      await setUp();
    } catch (e) {
      setupError = e as Error;
    }
  }, 60_000);

  async function setUp(): Promise<void> {
    if (!existsSync(MAIN)) throw new Error(`dist/ is missing (${MAIN}): run npm run build before this suite`);
    if (!existsSync(ADDON)) throw new Error(`the SO_ORIGINAL_DST addon is not built (${ADDON}): run npm run build:native`);
    let removed: string[];
    try {
      removed = await removeLeftovers();
      topo = await createTopology(namespaces);
    } catch (e) {
      throw new Error(
        `cannot create network namespaces and a veth pair (this suite needs root, iproute2 and veth support; it never skips): ${(e as Error).message}`,
        { cause: e },
      );
    }
    if (removed.length > 0) console.warn(`removed namespaces left by a crashed earlier run: ${removed.join(', ')}`);
    const { app: appNs, srv, srvIp, srvIpExcluded, excludedCidr } = topo;

    // Files the sidecar (UID 1337) reads: the YAML; it writes the access log into log/.
    dir = mkdtempSync(join(tmpdir(), 'capa-icpt-'));
    chmodSync(dir, 0o755);
    const logDir = join(dir, 'log');
    mkdirSync(logDir, { mode: 0o755 });
    chownSync(logDir, PROXY_UID, PROXY_UID);
    accessLogPath = join(logDir, 'access.log');
    const config = join(dir, 'sidecar.yaml');
    writeFileSync(
      config,
      `app: { id: e2e-app, port: ${APP}, address: 127.0.0.1 }
sidecar:
  adminPort: 15000
  adminAddress: 127.0.0.1
  prometheusPort: 15090
  readinessPort: 15021
  traffic:
    interception: { enabled: true, outboundPort: 15001, inboundPort: 15006 }
accessLog: { path: ${accessLogPath}, format: json }
`,
    );
    chmodSync(config, 0o644);

    // The capture rules, Istio's flags, plus the exclusions test 3 uses.
    await inNs(appNs, NODE, [
      MAIN, 'iptables',
      '-p', '15001', '-z', '15006', '-u', String(PROXY_UID), '-g', String(PROXY_UID),
      '-b', '*', '-d', '15090,15021,15020,15000',
      '-o', String(HTTP_EXCLUDED), '-x', excludedCidr,
    ]);

    servers = spawnInNs(srv, [NODE, SERVERS, JSON.stringify({ role: 'server', ips: [srvIp, srvIpExcluded], httpPorts: [HTTP, HTTP_EXCLUDED], echoPort: ECHO, grpcPort: GRPC, proto: PROTO })]);
    app = spawnInNs(appNs, [NODE, SERVERS, JSON.stringify({ role: 'app', port: APP })]);
    const env = { ...process.env };
    delete env.CAPA_DISABLE_NATIVE;
    sidecar = spawnInNs(
      appNs,
      ['setpriv', `--reuid=${PROXY_UID}`, `--regid=${PROXY_UID}`, '--clear-groups', NODE, MAIN, '--config', config, '--log-level', 'info'],
      { cwd: ROOT, env },
    );
    const isReady = (l: string) => l.includes('"event":"ready"');
    await Promise.all([servers.waitLine(isReady), app.waitLine(isReady)]);

    const end = Date.now() + 15_000;
    while (true) {
      const code = await inNs(appNs, 'curl', ['-s', '-o', '/dev/null', '-m', '1', '-w', '%{http_code}', 'http://127.0.0.1:15000/ready']).catch(() => '000');
      if (code === '200') break;
      if (sidecar.child.exitCode !== null) throw new Error(`the sidecar exited (${sidecar.child.exitCode}) before it was ready\n${proxyLogs()}`);
      if (Date.now() > end) throw new Error(`the sidecar was not ready within 15s (last /ready: ${code})\n${proxyLogs()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  afterAll(async () => {
    const problems: string[] = [];
    for (const p of [sidecar, app, servers]) await p?.stop().catch((e: Error) => problems.push(e.message));
    for (const ns of namespaces) await deleteNamespace(ns).catch((e: Error) => problems.push(`could not delete namespace ${ns}: ${e.message}`));
    if (dir) rmSync(dir, { recursive: true, force: true });
    console.info(`interception e2e: ${((Date.now() - t0) / 1000).toFixed(1)}s`);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  }, 30_000);

  it('1. outbound: unmodified curl and Node http.get reach the server through 15001, to the original destination', async () => {
    const { app: ns, srvIp, appIp } = t();
    const curlPath = `/x-curl-${run}`;
    const nodePath = `/x-node-${run}`;
    const before = sumOf(await metrics(), 'istio_requests_total', { reporter: 'source' });

    const c = await curl(ns, `http://${srvIp}:${HTTP}${curlPath}`);
    expect(c.status, `curl: ${c.body}\n${proxyLogs()}`).toBe(200);
    const cs = JSON.parse(c.body) as Seen;
    expect(cs).toMatchObject({ who: 'server', port: HTTP, path: curlPath, peer: appIp });
    expect(cs.xff, 'x-forwarded-for added by the proxy').not.toBeNull();

    const n = await client<HttpResult>(ns, { kind: 'http', url: `http://${srvIp}:${HTTP}${nodePath}` });
    expect(n.status, `http.get: ${JSON.stringify(n)}\n${proxyLogs()}`).toBe(200);
    expect(n.body && (JSON.parse(n.body) as Seen)).toMatchObject({ who: 'server', path: nodePath, peer: appIp });

    for (const path of [curlPath, nodePath]) {
      const [line] = await waitLog(path);
      expect(line, JSON.stringify(line)).toMatchObject({
        method: 'GET',
        path,
        response_code: 200,
        upstream_host: `${srvIp}:${HTTP}`, // SO_ORIGINAL_DST, not 127.0.0.1:15001
        upstream_cluster: 'PassthroughCluster',
      });
    }
    const m = await metrics();
    const after = sumOf(m, 'istio_requests_total', { reporter: 'source' });
    expect(after - before, seriesOf(m, 'istio_requests_total').map((s) => JSON.stringify(s)).join('\n')).toBe(2);
    expect(sumOf(m, 'istio_requests_total', { reporter: 'source', response_code: '200' })).toBeGreaterThanOrEqual(2);
  });

  it('2. inbound: a request from the server to <app-ip>:APP passes 15006 and reaches the app from 127.0.0.6', async () => {
    const { srv, appIp } = t();
    const path = `/inbound-${run}`;
    const before = sumOf(await metrics(), 'istio_requests_total', { reporter: 'destination' });
    const r = await client<HttpResult>(srv, { kind: 'http', url: `http://${appIp}:${APP}${path}` });
    expect(r.status, `inbound: ${JSON.stringify(r)}\n${proxyLogs()}`).toBe(200);
    const seen = JSON.parse(r.body!) as Seen;
    expect(seen.who).toBe('app');
    expect(seen.path).toBe(path);
    const [line] = await waitLog(path);
    expect(line, JSON.stringify(line)).toMatchObject({ path, response_code: 200, upstream_cluster: 'InboundPassthroughCluster', upstream_host: `127.0.0.1:${APP}` });
    const m = await metrics();
    expect(sumOf(m, 'istio_requests_total', { reporter: 'destination' }) - before, seriesOf(m, 'istio_requests_total').map((s) => JSON.stringify(s)).join('\n')).toBe(1);
    // Istio's inbound passthrough source; the capture's `-o lo -s 127.0.0.6/32 -j RETURN` rule exists for it.
    expect(seen.peer, `the app saw the proxy's connection from ${seen.peer}, not 127.0.0.6 (access log: ${JSON.stringify(line)})`).toBe('127.0.0.6');
  });

  it('3. an excluded outbound port (-o) and an excluded CIDR (-x) bypass the proxy and still work', async () => {
    const { app: ns, srvIp, srvIpExcluded, appIp } = t();
    const portPath = `/excluded-port-${run}`;
    const cidrPath = `/excluded-cidr-${run}`;
    const marker = `/captured-marker-${run}`;
    const p = await curl(ns, `http://${srvIp}:${HTTP_EXCLUDED}${portPath}`);
    expect(p.status, p.body).toBe(200);
    const ps = JSON.parse(p.body) as Seen;
    expect(ps).toMatchObject({ who: 'server', port: HTTP_EXCLUDED, path: portPath, peer: appIp });
    expect(ps.xff, 'no proxy in the path: no x-forwarded-for').toBeNull();
    const c = await client<HttpResult>(ns, { kind: 'http', url: `http://${srvIpExcluded}:${HTTP}${cidrPath}` });
    expect(c.status, JSON.stringify(c)).toBe(200);
    const cs = JSON.parse(c.body!) as Seen;
    expect(cs).toMatchObject({ who: 'server', port: HTTP, path: cidrPath, peer: appIp });
    expect(cs.xff, 'no proxy in the path: no x-forwarded-for').toBeNull();
    // A captured request after them: once its line is written, theirs would have been too.
    expect((await curl(ns, `http://${srvIp}:${HTTP}${marker}`)).status).toBe(200);
    await waitLog(marker);
    expect(linesFor(portPath)).toEqual([]);
    expect(linesFor(cidrPath)).toEqual([]);
  });

  it("4. the proxy's own upstream connections are not re-captured: one access-log line per request", async () => {
    const { app: ns, srvIp } = t();
    const N = 5;
    const paths = Array.from({ length: N }, (_, i) => `/noloop-${i}-${run}`);
    const before = sumOf(await metrics(), 'istio_requests_total', { reporter: 'source' });
    const started = Date.now();
    for (const path of paths) {
      const r = await curl(ns, `http://${srvIp}:${HTTP}${path}`);
      expect(r.status, `${path}: ${r.body}\n${proxyLogs()}`).toBe(200);
    }
    expect(Date.now() - started, 'requests completed promptly').toBeLessThan(10_000);
    for (const path of paths) await waitLog(path);
    await new Promise((r) => setTimeout(r, 300)); // a loop would keep adding lines and requests
    for (const path of paths) {
      const lines = linesFor(path);
      expect(lines.length, `${path}: ${JSON.stringify(lines)}`).toBe(1);
      expect(lines[0]!.upstream_host).toBe(`${srvIp}:${HTTP}`);
      const atServer = servers!.lines.filter((l) => l.includes(`"path":"${path}"`));
      expect(atServer.length, `the server saw ${path} ${atServer.length} times`).toBe(1);
    }
    const m = await metrics();
    expect(sumOf(m, 'istio_requests_total', { reporter: 'source' }) - before).toBe(N);
  });

  it('5. gRPC (h2c sniffed on 15001): unary and bidirectional streaming calls reach the server', async () => {
    const { app: ns, srvIp } = t();
    const r = await client<{ unary: any; bidi: any; error?: string }>(ns, { kind: 'grpc', target: `${srvIp}:${GRPC}`, proto: PROTO, messages: 5 });
    const grpcLines = () => accessLog().filter((l) => typeof l.path === 'string' && (l.path as string).startsWith('/capa.e2e.Echo/'));
    // The access log is flushed in batches: give it a moment, so the message shows what the proxy did.
    for (let i = 0; i < 60 && grpcLines().length < 2; i++) await new Promise((res) => setTimeout(res, 50));
    const lines = grpcLines();
    const why =
      `client: ${JSON.stringify(r)}\naccess log: ${JSON.stringify(lines)}\n` +
      // What this failure has meant so far: h2c in on 15001, HTTP/1.1 out to the gRPC server.
      'hint: the capture routes go to PassthroughCluster, which is HTTP/1.1 (protocol: http1); an h2c (gRPC) stream needs ' +
      "Envoy/Istio's use_downstream_protocol on the passthrough clusters (h2 in -> h2c out, HTTP/1.1 in -> HTTP/1.1 out)\n" +
      proxyLogs();
    expect(r.error, why).toBeUndefined();
    expect(r.unary, why).toMatchObject({ ok: true, reply: { text: 'echo:hello', seq: 1 } });
    expect(r.bidi, why).toMatchObject({ ok: true, status: { code: 0 } });
    expect((r.bidi.replies as { text: string; seq: number }[]).map((m) => `${m.seq}:${m.text}`)).toEqual(['1:chat:m1', '2:chat:m2', '3:chat:m3', '4:chat:m4', '5:chat:m5']);
    const [unaryLine] = await waitLog('/capa.e2e.Echo/Echo');
    expect(unaryLine).toMatchObject({ protocol: 'HTTP/2', upstream_host: `${srvIp}:${GRPC}` });
    const [chatLine] = await waitLog('/capa.e2e.Echo/Chat');
    expect(chatLine).toMatchObject({ protocol: 'HTTP/2', upstream_host: `${srvIp}:${GRPC}` });
  });

  it('6. raw TCP (not HTTP) through 15001 is echoed byte for byte and counted in istio_tcp_*_bytes_total', async () => {
    const { app: ns, srvIp, appIp } = t();
    const m0 = await metrics();
    const sent0 = sumOf(m0, 'istio_tcp_sent_bytes_total', { reporter: 'source' });
    const recv0 = sumOf(m0, 'istio_tcp_received_bytes_total', { reporter: 'source' });
    const r = await client<{ why: string; sent: number; received: number; equal: boolean; sha256Sent: string; sha256Received: string }>(ns, {
      kind: 'tcp',
      host: srvIp,
      port: ECHO,
      size: TCP_BYTES,
    });
    expect(r, proxyLogs()).toMatchObject({ why: 'echoed', sent: TCP_BYTES, received: TCP_BYTES, equal: true });
    expect(r.sha256Received).toBe(r.sha256Sent);
    // The echo saw the proxy's connection (from the pod IP), with every byte.
    const echoed = await servers!.waitLine((l) => l.includes('"event":"tcp"'), 5000);
    expect(JSON.parse(echoed)).toMatchObject({ port: ECHO, peer: appIp, bytes: TCP_BYTES });
    let m = '';
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      m = await metrics();
      if (sumOf(m, 'istio_tcp_sent_bytes_total', { reporter: 'source' }) - sent0 >= TCP_BYTES) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const tcpSeries = [...seriesOf(m, 'istio_tcp_sent_bytes_total'), ...seriesOf(m, 'istio_tcp_received_bytes_total')].map((s) => JSON.stringify(s)).join('\n');
    expect(sumOf(m, 'istio_tcp_sent_bytes_total', { reporter: 'source' }) - sent0, tcpSeries).toBe(TCP_BYTES);
    expect(sumOf(m, 'istio_tcp_received_bytes_total', { reporter: 'source' }) - recv0, tcpSeries).toBe(TCP_BYTES);
  });

  it('7. `iptables --cleanup` leaves no ISTIO_ chain or rule in the nat table', async () => {
    const { app: ns, srvIp } = t();
    const before = await natRules();
    expect(before.v4, 'the capture was in place').toContain(':ISTIO_OUTPUT');
    await inNs(ns, NODE, [MAIN, 'iptables', '--cleanup']);
    const after = await natRules();
    expect(after.v4, after.v4).not.toContain('ISTIO_');
    expect(after.v6, after.v6).not.toContain('ISTIO_');
    // And traffic is direct again: it works, and the proxy does not see it.
    const path = `/after-cleanup-${run}`;
    const r = await curl(ns, `http://${srvIp}:${HTTP}${path}`);
    expect(r.status).toBe(200);
    expect((JSON.parse(r.body) as Seen).xff).toBeNull();
    await sh('sleep', ['0.3']);
    expect(linesFor(path)).toEqual([]);
  });
});

/**
 * SO_ORIGINAL_DST on the real kernel: a network namespace made by this test, iptables nat REDIRECT
 * rules inside it (the host's own rules are never touched), and Node processes run in it with
 * `ip netns exec`. Shows (1) the addon reads the pre-redirect address for IPv4, IPv4 on a
 * dual-stack listener and IPv6; (2) the real sidecar CLI uses it on its capture listeners for HTTP
 * (outbound and inbound) and opaque TCP, and falls back to the Host header with
 * CAPA_DISABLE_NATIVE=1. Needs root (CI runs as root); fails, never skips, without namespaces.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { ADDON_PATH } from '../../src/interception/original-dst/index.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LOADER = join(ROOT, 'dist', 'interception', 'original-dst', 'index.js');
const MAIN = join(ROOT, 'dist', 'main.js');
const NS = `capa-od-${randomBytes(4).toString('hex')}`;

async function sh(cmd: string, args: string[], timeout = 20_000): Promise<string> {
  const r = await run(cmd, args, { timeout, maxBuffer: 16 * 1024 * 1024 });
  return r.stdout;
}
const inNs = (cmd: string, args: string[], timeout?: number): Promise<string> => sh('ip', ['netns', 'exec', NS, cmd, ...args], timeout);

/** Ports inside the namespace (a fresh one: every port is free). */
const P4 = 17000; // IPv4 client dials this, REDIRECT → Q4
const Q4 = 17001;
const P4D = 17010; // IPv4 client → dual-stack (::) listener
const Q4D = 17011;
const P6 = 17020; // IPv6
const Q6 = 17021;
const UPSTREAM = 18080; // the "remote" HTTP server the app calls (really on 127.0.0.1 in the namespace)
const ECHO = 18081; // a raw TCP echo server
const APP = 18090; // the application behind inbound capture

/**
 * Runs in the namespace: for each case, listen on `listen`:`q`, dial `dial`:`p`, and print what
 * the addon (raw) and the loader (dist, which drops "not redirected") say about the accepted socket.
 */
const PROBE = `
import net from 'node:net';
import { createRequire } from 'node:module';
const [addonPath, loaderPath, casesJson] = process.argv.slice(2);
const addon = createRequire(import.meta.url)(addonPath);
const { loadOriginalDst } = await import(loaderPath);
const get = loadOriginalDst({ warn: (o, m) => console.error(m), debug() {} }, { env: {} });
const out = {};
for (const c of JSON.parse(casesJson)) {
  const server = net.createServer();
  await new Promise((res, rej) => { server.once('error', rej); server.listen({ host: c.listen, port: c.q, ipv6Only: c.listen === '::1' }, res); });
  const accepted = new Promise((res) => server.once('connection', res));
  const client = net.connect({ host: c.dial, port: c.p });
  await new Promise((res, rej) => { client.once('connect', res); client.once('error', rej); });
  const s = await accepted;
  out[c.name] = { raw: addon.getOriginalDst(s._handle.fd), error: addon.lastError(), loader: get(s), local: s.localAddress + ':' + s.localPort };
  client.destroy(); s.destroy(); server.close();
}
console.log(JSON.stringify(out));
`;

/**
 * Runs in the namespace: an upstream HTTP server, a TCP echo and an "app", the sidecar CLI with
 * interception on (15001/15006); clients from 127.0.0.2 (outbound-redirected) and 127.0.0.3
 * (inbound-redirected) call the real addresses; prints what reached where.
 */
const DRIVER = `
import net from 'node:net';
import http from 'node:http';
import { spawn } from 'node:child_process';
const [main, config, disableNative] = process.argv.slice(2);
const listen = (srv, port) => new Promise((res, rej) => { srv.once('error', rej); srv.listen(port, '127.0.0.1', res); });
const upstream = http.createServer((req, res) => res.end(JSON.stringify({ who: 'upstream', host: req.headers.host, peer: req.socket.remoteAddress, xff: req.headers['x-forwarded-for'] ?? null })));
const app = http.createServer((req, res) => res.end(JSON.stringify({ who: 'app', host: req.headers.host, peer: req.socket.remoteAddress })));
const echo = net.createServer((s) => { s.on('error', () => {}); s.pipe(s); });
await listen(upstream, ${UPSTREAM}); await listen(app, ${APP}); await listen(echo, ${ECHO});
const env = { ...process.env };
if (disableNative === '1') env.CAPA_DISABLE_NATIVE = '1'; else delete env.CAPA_DISABLE_NATIVE;
const child = spawn(process.execPath, [main, '--config', config, '--log-level', 'info'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
let logs = '';
child.stdout.on('data', (d) => (logs += d)); child.stderr.on('data', (d) => (logs += d));
const get = (port, path, host, localAddress) => new Promise((resolve) => {
  const req = http.request({ host: '127.0.0.1', port, path, localAddress, headers: { host }, agent: false, timeout: 5000 }, (res) => {
    let body = ''; res.on('data', (c) => (body += c)); res.on('end', () => resolve({ status: res.statusCode, body }));
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => resolve({ status: 0, body: e.message }));
  req.end();
});
const result = {};
try {
  const deadline = Date.now() + 15000;
  while (true) {
    const r = await get(15000, '/ready', '127.0.0.1:15000');
    if (r.status === 200) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('sidecar not ready: ' + logs);
    await new Promise((r) => setTimeout(r, 50));
  }
  // Outbound: the app calls the upstream; the Host header names a place that does not exist.
  result.outboundBogusHost = await get(${UPSTREAM}, '/out', 'nowhere.invalid:9', '127.0.0.2');
  result.outboundRightHost = await get(${UPSTREAM}, '/out', '127.0.0.1:${UPSTREAM}', '127.0.0.2');
  // Inbound: a peer calls the app's port; the Host header carries another port.
  result.inbound = await get(${APP}, '/in', 'orders.example:1', '127.0.0.3');
  // Opaque TCP (not HTTP): only SO_ORIGINAL_DST can say where it was going.
  result.tcp = await new Promise((resolve) => {
    const payload = Buffer.from([0, 1, 2, 3, 250, 251, 252, 253, 0x16, 0x03]);
    const s = net.connect({ host: '127.0.0.1', port: ${ECHO}, localAddress: '127.0.0.2' });
    let got = Buffer.alloc(0);
    const done = (why) => { s.destroy(); resolve({ echoed: got.equals(payload), bytes: got.length, why }); };
    s.on('connect', () => s.write(payload));
    s.on('data', (d) => { got = Buffer.concat([got, d]); if (got.length >= payload.length) done('echoed'); });
    s.on('close', () => done('closed'));
    s.on('error', (e) => done(e.message));
    setTimeout(() => done('timeout'), 5000);
  });
} catch (e) {
  result.error = String(e && e.message || e);
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => { const t = setTimeout(() => { child.kill('SIGKILL'); r(); }, 5000); child.once('exit', () => { clearTimeout(t); r(); }); });
  result.logs = logs;
  upstream.close(); app.close(); echo.close();
}
console.log(JSON.stringify(result));
process.exit(0);
`;

const CONFIG = `
app: { id: orders, port: ${APP}, address: 127.0.0.1 }
sidecar:
  traffic:
    interception: { enabled: true, outboundPort: 15001, inboundPort: 15006 }
`;

interface ProbeResult {
  raw: { address: string; port: number; family: number } | null;
  error: { errno: number; message: string } | null;
  loader: { address: string; port: number; family: number } | null;
  local: string;
}
interface Reply {
  status: number;
  body: string;
}
interface DriverResult {
  outboundBogusHost?: Reply;
  outboundRightHost?: Reply;
  inbound?: Reply;
  tcp?: { echoed: boolean; bytes: number; why: string };
  error?: string;
  logs: string;
}

let dir = '';
let nsCreated = false;
/** Why ip6tables nat could not be set up here (null: it works and IPv6 is asserted). */
let v6Unavailable: string | null = null;

async function killNamespacePids(): Promise<void> {
  // Processes in this namespace were all started by this test; stop them by id before deleting it.
  const pids = (await sh('ip', ['netns', 'pids', NS]).catch(() => '')).split(/\s+/).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

describe('SO_ORIGINAL_DST through real iptables REDIRECT in a network namespace', () => {
  beforeAll(async () => {
    if (!existsSync(ADDON_PATH)) throw new Error(`the addon is not built (${ADDON_PATH}): run npm run build:native`);
    if (!existsSync(LOADER) || !existsSync(MAIN)) throw new Error('dist/ is missing: run npm run build before this suite');
    try {
      await sh('ip', ['netns', 'add', NS]);
      nsCreated = true;
      await inNs('ip', ['link', 'set', 'lo', 'up']);
    } catch (e) {
      throw new Error(`cannot create network namespace ${NS} (this suite needs root and iproute2; it never skips): ${(e as Error).message}`, { cause: e });
    }
    const nat = (bin: string, rule: string): Promise<string> => inNs(bin, ['-w', '-t', 'nat', '-A', 'OUTPUT', ...rule.split(' ')]);
    await nat('iptables', `-p tcp -d 127.0.0.1 --dport ${P4} -j REDIRECT --to-ports ${Q4}`);
    await nat('iptables', `-p tcp -d 127.0.0.1 --dport ${P4D} -j REDIRECT --to-ports ${Q4D}`);
    // The sidecar's "app": clients from 127.0.0.2 are captured outbound, from 127.0.0.3 inbound.
    // The sidecar's own upstream connections come from 127.0.0.1 and are not re-captured.
    await nat('iptables', `-p tcp -s 127.0.0.2 -d 127.0.0.1 -j REDIRECT --to-ports 15001`);
    await nat('iptables', `-p tcp -s 127.0.0.3 -d 127.0.0.1 --dport ${APP} -j REDIRECT --to-ports 15006`);
    try {
      await nat('ip6tables', `-p tcp -d ::1 --dport ${P6} -j REDIRECT --to-ports ${Q6}`);
    } catch (e) {
      v6Unavailable = (e as Error).message.split('\n').find((l) => l.trim() !== '') ?? 'ip6tables failed';
    }
    dir = mkdtempSync(join(tmpdir(), 'capa-od-'));
    writeFileSync(join(dir, 'probe.mjs'), PROBE);
    writeFileSync(join(dir, 'driver.mjs'), DRIVER);
    writeFileSync(join(dir, 'sidecar.yaml'), CONFIG);
  }, 60_000);

  afterAll(async () => {
    if (nsCreated) {
      await killNamespacePids();
      await sh('ip', ['netns', 'del', NS]).catch((e: Error) => console.error(`could not delete namespace ${NS}: ${e.message}`));
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 30_000);

  async function probe(cases: { name: string; listen: string; q: number; dial: string; p: number }[]): Promise<Record<string, ProbeResult>> {
    const out = await inNs(process.execPath, [join(dir, 'probe.mjs'), ADDON_PATH, LOADER, JSON.stringify(cases)]);
    return JSON.parse(out) as Record<string, ProbeResult>;
  }

  async function driver(disableNative: boolean): Promise<DriverResult> {
    const out = await inNs(process.execPath, [join(dir, 'driver.mjs'), MAIN, join(dir, 'sidecar.yaml'), disableNative ? '1' : '0'], 60_000);
    const r = JSON.parse(out) as DriverResult;
    if (r.error) throw new Error(`driver failed: ${r.error}\n${r.logs}`);
    return r;
  }

  it('IPv4: a connection to 127.0.0.1:P redirected to Q reports 127.0.0.1:P', async () => {
    const r = await probe([
      { name: 'redirected', listen: '127.0.0.1', q: Q4, dial: '127.0.0.1', p: P4 },
      { name: 'direct', listen: '127.0.0.1', q: Q4, dial: '127.0.0.1', p: Q4 },
    ]);
    expect(r.redirected!.raw).toEqual({ address: '127.0.0.1', port: P4, family: 4 });
    expect(r.redirected!.loader).toEqual({ address: '127.0.0.1', port: P4, family: 4 });
    expect(r.redirected!.local).toBe(`127.0.0.1:${Q4}`);
    // Not redirected: conntrack (loaded by the nat table) reports the socket's own address; the loader says null.
    expect([null, `127.0.0.1:${Q4}`]).toContain(r.direct!.raw && `${r.direct!.raw.address}:${r.direct!.raw.port}`);
    expect(r.direct!.error).toBeNull();
    expect(r.direct!.loader).toBeNull();
  });

  it('IPv4 client of a dual-stack (::) listener: the v4-mapped socket reports 127.0.0.1:P', async () => {
    const r = await probe([{ name: 'mapped', listen: '::', q: Q4D, dial: '127.0.0.1', p: P4D }]);
    expect(r.mapped!.local).toBe(`::ffff:127.0.0.1:${Q4D}`);
    expect(r.mapped!.raw).toEqual({ address: '127.0.0.1', port: P4D, family: 4 });
    expect(r.mapped!.loader).toEqual({ address: '127.0.0.1', port: P4D, family: 4 });
  });

  it('IPv6 (ip6tables nat): a connection to [::1]:P redirected to Q reports [::1]:P', async () => {
    if (v6Unavailable !== null) {
      // Said out loud, not skipped: the IPv4 cases above are the ones asserted on this machine.
      console.warn(`IPv6 SO_ORIGINAL_DST not tested: ip6tables nat is unavailable here (${v6Unavailable})`);
      expect(v6Unavailable, 'ip6tables nat unavailable; only IPv4 is asserted on this machine').toMatch(/nat|table|protocol|modprobe|not supported/i);
      return;
    }
    const r = await probe([
      { name: 'redirected', listen: '::1', q: Q6, dial: '::1', p: P6 },
      { name: 'direct', listen: '::1', q: Q6, dial: '::1', p: Q6 },
    ]);
    expect(r.redirected!.raw).toEqual({ address: '::1', port: P6, family: 6 });
    expect(r.redirected!.loader).toEqual({ address: '::1', port: P6, family: 6 });
    expect(r.direct!.loader).toBeNull();
    expect(r.direct!.error).toBeNull();
  });

  it('the sidecar forwards captured HTTP and TCP to the original destination, whatever the Host header says', async () => {
    const r = await driver(false);
    expect(r.logs).not.toContain('SO_ORIGINAL_DST addon not loaded');
    expect(r.outboundBogusHost?.status, r.logs).toBe(200);
    const out = JSON.parse(r.outboundBogusHost!.body) as { who: string; host: string; peer: string; xff: string | null };
    expect(out.who).toBe('upstream');
    expect(out.host).toBe('nowhere.invalid:9'); // passed through untouched
    expect(out.peer).toBe('127.0.0.1'); // from the sidecar, not from the client (127.0.0.2)
    expect(out.xff).toContain('127.0.0.2');
    expect(r.outboundRightHost?.status).toBe(200);
    expect(r.inbound?.status, r.logs).toBe(200);
    expect((JSON.parse(r.inbound!.body) as { who: string }).who).toBe('app'); // port APP from SO_ORIGINAL_DST, not :1 from Host
    expect(r.tcp).toEqual({ echoed: true, bytes: 10, why: 'echoed' });
  }, 90_000);

  it('with CAPA_DISABLE_NATIVE=1 the sidecar says so once and falls back to the Host header', async () => {
    const r = await driver(true);
    const warnings = r.logs.split('\n').filter((l) => l.includes('SO_ORIGINAL_DST addon not loaded (disabled by CAPA_DISABLE_NATIVE=1); capture listeners fall back to the Host header'));
    expect(warnings, r.logs).toHaveLength(1);
    // The Host header names nothing reachable: the request fails locally instead of reaching the upstream.
    expect(r.outboundBogusHost?.status, r.logs).toBeGreaterThanOrEqual(500);
    expect(r.outboundBogusHost?.body).not.toContain('"who":"upstream"');
    // A correct Host header still works.
    expect(r.outboundRightHost?.status).toBe(200);
    expect((JSON.parse(r.outboundRightHost!.body) as { who: string }).who).toBe('upstream');
    // Inbound takes the port from Host (:1): nothing listens there.
    expect(r.inbound?.status).toBe(503);
    // Opaque TCP has no Host header: the connection is closed.
    expect(r.tcp?.echoed).toBe(false);
  }, 90_000);
});

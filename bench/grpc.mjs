// gRPC suite (node bench/run.mjs --suite grpc): unary Echo through capa-runtime, two hops
// (outbound listener → http2 cluster → inbound listener → http2 cluster → server, one process,
// bench/grpc-proxy.yaml), one hop, and direct. The verdict rows are driven by a lean load side
// (h2load against bench/lib/grpc-echo.mjs) so they show the proxy's limit; the same three rows
// with @grpc/grpc-js on both ends are kept as reference rows. See bench/README.md, "gRPC suite".
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { readFileSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import { run, start, stop, freePorts } from './lib/procs.mjs';
import { treeCpu, cpuDelta, treeMemory } from './lib/cpu.mjs';
import { median, fmt } from './lib/table.mjs';
import { startCapaConfig, waitOutput, ROOT, capaCommand } from './lib/capa.mjs';
import { sysinfo, loadNote } from './lib/sysinfo.mjs';
import { summarizeProfile, profileMarkdown } from './lib/cpuprofile.mjs';
import { H2LOAD, h2loadUnary } from './lib/grpc-h2load.mjs';
import { ECHO_PATH, echoFrame } from './lib/grpc-load.mjs';
import { connectH2Grpc } from './lib/h2grpc.mjs';

const BENCH_DIR = join(ROOT, 'bench');
export const GRPC_TARGETS = { cps: 5000, p99Ms: 5 };

/** Where each row sends its calls; `set` 'verdict' rows carry the issue's targets. */
const ROWS = [
  { id: 'capa-2hop', set: 'verdict', label: 'capa-runtime, 2 hops (outbound → inbound)', portVar: 'LISTEN_PORT' },
  { id: 'capa-1hop', set: 'verdict', label: 'capa-runtime, 1 hop', portVar: 'ONEHOP_PORT' },
  { id: 'direct', set: 'verdict', label: 'direct (no proxy)' },
  { id: 'grpcjs-2hop', set: 'reference', label: 'grpc-js ↔ grpc-js, capa-runtime 2 hops', portVar: 'LISTEN_PORT' },
  { id: 'grpcjs-1hop', set: 'reference', label: 'grpc-js ↔ grpc-js, capa-runtime 1 hop', portVar: 'ONEHOP_PORT' },
  { id: 'grpcjs-direct', set: 'reference', label: 'grpc-js ↔ grpc-js, direct' },
];
const isDirect = (row) => row.portVar === undefined;

/**
 * The load side of each row set. Verdict rows: h2load (default; `--grpc-client h2` uses the lean
 * node:http2 client instead) against the lean echo server. Reference rows: @grpc/grpc-js client
 * and server. `--grpc-client grpcjs` makes the verdict rows grpc-js (the old suite) and drops the
 * reference rows, which would then repeat them.
 */
function loadSides(o) {
  const client = o.grpcClient === 'h2load' && !existsSync(H2LOAD) ? 'h2' : o.grpcClient;
  if (client === 'grpcjs') return { verdict: { client: 'grpcjs', server: 'grpcjs' }, reference: null };
  return { verdict: { client, server: 'lean' }, reference: { client: 'grpcjs', server: 'grpcjs' } };
}

/** Sessions × streams per session for `streams` concurrent calls (h2load's -c × -m). */
function split(o) {
  const sessions = Math.min(o.grpcSessions, o.streams);
  return { sessions, perSession: Math.ceil(o.streams / sessions) };
}

function signed(v, d = 3) {
  return v == null ? '—' : `${v >= 0 ? '+' : ''}${fmt(v, d)}`;
}

/** Calls for `ms`: closed loop, or paced at `rate` calls/s in all (h2load only). */
async function load(target, ms, side, o, rate = 0) {
  if (side.client === 'h2load') {
    const { sessions, perSession } = split(o);
    return h2loadUnary({ target, path: ECHO_PATH, frame: echoFrame('x'.repeat(o.grpcSize), 1), sessions, streams: perSession, seconds: Math.max(1, Math.round(ms / 1000)), rate, cpus: o.loadCpu });
  }
  const args = [join(BENCH_DIR, 'lib/grpc-load.mjs'), '--target', target, '--client', side.client, '--sessions', String(o.grpcSessions)];
  args.push('--concurrency', String(o.streams), '--duration', String(ms), '--size', String(o.grpcSize));
  const res = await run(process.execPath, args, { cpus: o.loadCpu, timeoutMs: ms + 30_000 });
  if (res.code !== 0) throw new Error(`grpc client failed (${res.code ?? res.signal}): ${res.stderr.trim().slice(-400)}`);
  return JSON.parse(res.stdout.trim().split('\n').at(-1));
}

/**
 * One call through the lean node:http2 client: the reply must echo the request and carry
 * grpc-status 0 in its trailers (h2load itself sees only the HTTP status). Returns an error text or null.
 */
async function checkOneCall(target, o) {
  const frame = echoFrame('x'.repeat(o.grpcSize), 7);
  let client = null;
  try {
    client = await connectH2Grpc(target, { sessions: 1 });
    const reply = await client.unary(ECHO_PATH, frame);
    return reply.equals(frame.subarray(5)) ? null : 'the reply did not echo the request';
  } catch (e) {
    return `${e.code ?? ''} ${e.details ?? e.message}`.trim();
  } finally {
    client?.close();
  }
}

/**
 * capa-runtime's istio_requests_total, summed per reporter: { total, ok (grpc_response_status "0"),
 * dc (response_flags DC: the client reset the stream — h2load does that to the calls in flight
 * when its duration ends) }.
 */
async function grpcStats(adminPort) {
  const text = await new Promise((resolve, reject) => {
    http
      .get(`http://127.0.0.1:${adminPort}/stats/prometheus`, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`/stats/prometheus answered ${res.statusCode}`))));
      })
      .on('error', reject);
  });
  const out = { source: { total: 0, ok: 0, dc: 0 }, destination: { total: 0, ok: 0, dc: 0 } };
  for (const line of text.split('\n')) {
    if (!line.startsWith('istio_requests_total{')) continue;
    const reporter = /reporter="(\w+)"/.exec(line)?.[1];
    const n = Number(line.slice(line.lastIndexOf(' ') + 1));
    const r = out[reporter];
    if (!r || !Number.isFinite(n)) continue;
    r.total += n;
    if (line.includes('grpc_response_status="0"')) r.ok += n;
    else if (/response_flags="[^"]*\bDC\b/.test(line)) r.dc += n;
  }
  return out;
}

/** What the proxy counted during the measured run, per reporter (source = the listener the client called). */
function statsDelta(a, b) {
  const d = (k) => ({ total: b[k].total - a[k].total, ok: b[k].ok - a[k].ok, dc: b[k].dc - a[k].dc });
  return { source: d('source'), destination: d('destination') };
}

async function measure(row, side, servers, o, nodeArgs = []) {
  const server = servers[side.server];
  let rec = null;
  let readyMs = null;
  let adminPort = null;
  let port = server.port;
  if (!isDirect(row)) {
    const s = await startCapaConfig({
      name: row.id,
      config: 'grpc-proxy.yaml',
      cpus: o.proxyCpu,
      env: { UPSTREAM_PORT: String(server.port) },
      portNames: ['INBOUND_PORT', 'ONEHOP_PORT'],
      nodeArgs,
      readyTimeoutMs: o.readyTimeoutMs,
    });
    if (!s.rec) return { available: false, reason: s.reason };
    rec = s.rec;
    readyMs = s.readyMs;
    adminPort = s.env.ADMIN_PORT;
    port = Number(s.env[row.portVar]);
  }
  const target = `127.0.0.1:${port}`;
  const flags = [];
  try {
    const idle = rec ? treeMemory(rec.pid) : null;
    if (side.client !== 'grpcjs') {
      const bad = await checkOneCall(target, o);
      if (bad) return { available: false, reason: `a checked call through ${target} failed: ${bad}` };
    }
    // Warm-up doubles as the sanity check: calls must go through, without errors.
    const warm = await load(target, Math.max(1000, o.warmupS * 1000), side, o);
    if (warm.calls === 0) return { available: false, reason: `no call succeeded through ${target}: ${warm.firstError}` };
    if (warm.errors || warm.mismatches) flags.push(`warm-up: ${warm.errors} errors (${warm.firstError}), ${warm.mismatches} mismatched replies`);
    const stats0 = adminPort ? await grpcStats(adminPort) : null;
    const cpu0 = rec ? treeCpu(rec.pid) : null;
    const srv0 = treeCpu(server.rec.pid);
    const res = await load(target, o.durationS * 1000, side, o);
    const srv1 = treeCpu(server.rec.pid);
    const cpu = rec ? cpuDelta(cpu0, treeCpu(rec.pid)) : null;
    const srvCpu = cpuDelta(srv0, srv1);
    const after = rec ? treeMemory(rec.pid) : null;
    // The same calls paced at the target rate (h2load --rps): the latency an app sending
    // 5,000 calls/s sees, which a closed loop at saturation does not show.
    const paced = o.grpcRate > 0 && side.client === 'h2load' ? await load(target, o.durationS * 1000, side, o, o.grpcRate) : null;
    const runs = paced ? 2 : 1;
    const calls = res.calls + (paced?.calls ?? 0);
    // Every call the proxy saw must have ended grpc-status 0, and at least as many as the client
    // counted — except the ones still in flight when the client stopped, which it resets (DC;
    // at most one per stream and run).
    const grpc = stats0 ? statsDelta(stats0, await grpcStats(adminPort)) : null;
    if (grpc) {
      for (const [reporter, c] of Object.entries(grpc)) {
        const bad = c.total - c.ok - c.dc;
        if (bad > 0) flags.push(`proxy (${reporter}) counted ${bad} of ${c.total} calls ending without grpc-status 0`);
        if (c.dc > o.streams * runs) flags.push(`proxy (${reporter}) saw ${c.dc} calls reset by the client (more than the ${o.streams * runs} in flight at the ends of the runs)`);
      }
      if (grpc.source.ok < calls) flags.push(`the client counted ${calls} calls, the proxy only ${grpc.source.ok} with grpc-status 0`);
    }
    if (res.errors) flags.push(`${res.errors} failed calls ${JSON.stringify(res.errorCodes)}: ${res.firstError}`);
    if (paced?.errors) flags.push(`paced run: ${paced.errors} failed calls ${JSON.stringify(paced.errorCodes)}: ${paced.firstError}`);
    if (paced && paced.cps < o.grpcRate * 0.97) flags.push(`paced run: ${Math.round(paced.cps)} calls/s, short of the ${o.grpcRate} asked for`);
    if (res.mismatches) flags.push(`${res.mismatches} replies did not echo their request`);
    return {
      available: true,
      readyMs,
      load: res,
      paced,
      grpc,
      cpu,
      cpuUsPerCall: cpu && res.calls ? (cpu.seconds * 1e6) / res.calls : null,
      serverCpuUsPerCall: res.calls ? (srvCpu.seconds * 1e6) / res.calls : null,
      memory: rec ? { idleMb: idle.rssMb, peakMb: after.hwmMb } : null,
      flags,
    };
  } catch (err) {
    return { available: false, reason: `measurement failed: ${err.message}` };
  } finally {
    if (rec) await stop(rec, nodeArgs.length ? 15_000 : 3000);
  }
}

/** One extra two-hop verdict-row run of capa-runtime under node --cpu-prof; returns the summary. */
async function profilePass(servers, side, o, dir, log) {
  const profDir = join(dir, 'grpc-cpuprofile');
  mkdirSync(profDir, { recursive: true });
  log(`profile: capa-runtime (2 hops, ${side.client} → ${side.server} server) under --cpu-prof, ${o.durationS}s`);
  const res = await measure(ROWS[0], side, servers, o, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  return { res, profDir };
}

async function startServer(name, script, o, args = []) {
  const [port] = await freePorts(1);
  const rec = start(name, process.execPath, [join(BENCH_DIR, 'lib', script), '--port', String(port), ...args], { cpus: o.loadCpu, cwd: ROOT });
  const up = await waitOutput(rec, 'listening');
  if (!up.ok) throw new Error(`${name} did not start: ${up.reason}`);
  return { rec, port };
}

const CLIENT_TEXT = {
  h2load: (o) => {
    const { sessions, perSession } = split(o);
    return `h2load (nghttp2, C) with ${sessions} h2c connection(s) × ${perSession} streams, the same request every call; one call through bench/lib/h2grpc.mjs checked for echo + grpc-status 0 first, and the proxy's istio_requests_total checked after (every call grpc-status 0)`;
  },
  h2: (o) => `bench/lib/h2grpc.mjs (node:http2) with ${Math.min(o.grpcSessions, o.streams)} h2c connection(s), requests encoded once up front, every reply checked to echo its request with grpc-status 0`,
  grpcjs: () => 'one @grpc/grpc-js channel (retries off), every reply checked to echo its request',
};
const SERVER_TEXT = {
  lean: (o) =>
    o.grpcEcho === 'node'
      ? 'bench/lib/grpc-echo.mjs --impl node (raw node:http2: echoes the request frame, grpc-status 0 trailers)'
      : "bench/lib/grpc-echo.mjs --impl h2 (echoes the request frame, grpc-status 0 trailers, on capa-runtime's own HTTP/2 connection: no node:http2 GC pauses in the rows)",
  grpcjs: () => 'bench/lib/grpc-server.mjs (@grpc/grpc-js)',
};

export async function runGrpcSuite(o, log) {
  const env = sysinfo({ grpcJs: JSON.parse(readFileSync(join(ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')).version, capa: capaCommand(['--config', 'bench/grpc-proxy.yaml']).descr });
  const sides = loadSides(o);
  if (sides.verdict.client === 'h2load') env.h2load = execText(H2LOAD, ['--version']);
  const rows = ROWS.filter((r) => sides[r.set] !== null);
  const sideOf = (row) => sides[row.set];
  const pinning = `proxy on core ${o.proxyCpu} (taskset -c ${o.proxyCpu}); load generators and gRPC servers share core ${o.loadCpu} (taskset -c ${o.loadCpu})`;
  const servers = {};
  for (const which of new Set(rows.map((r) => sideOf(r).server))) {
    servers[which] = which === 'lean' ? await startServer('grpc-echo', 'grpc-echo.mjs', o, ['--impl', o.grpcEcho]) : await startServer('grpc-server', 'grpc-server.mjs', o);
  }
  log(`grpc: servers ${Object.entries(servers).map(([k, v]) => `${k} pid ${v.rec.pid} :${v.port}`).join(', ')}; ${o.rounds} round(s) × ${o.durationS}s, ${o.streams} streams`);

  const rounds = [];
  const unavailable = new Map();
  for (let r = 1; r <= o.rounds; r++) {
    const round = { round: r, peers: {} };
    rounds.push(round);
    for (const row of rows) {
      if (unavailable.has(row.id)) {
        round.peers[row.id] = { available: false, reason: unavailable.get(row.id) };
        continue;
      }
      log(`grpc round ${r}/${o.rounds}: ${row.label} (${sideOf(row).client})`);
      const res = await measure(row, sideOf(row), servers, o);
      round.peers[row.id] = res;
      if (!res.available) {
        log(`  not available (${res.reason})`);
        if (r === 1) unavailable.set(row.id, res.reason);
      } else {
        log(
          `  ${Math.round(res.load.cps)} calls/s, p50 ${res.load.p50.toFixed(3)} ms, p99 ${res.load.p99.toFixed(3)} ms, ` +
            `${res.cpuUsPerCall == null ? '—' : res.cpuUsPerCall.toFixed(1)} µs proxy CPU/call` +
            (res.paced ? `; paced ${Math.round(res.paced.cps)} calls/s: p50 ${res.paced.p50.toFixed(3)} ms, p99 ${res.paced.p99.toFixed(3)} ms` : '') +
            (res.flags.length ? `  FLAGS: ${res.flags.join('; ')}` : ''),
        );
      }
    }
  }
  let profile = null;
  if (o.profile) {
    const { res, profDir } = await profilePass(servers, sides.verdict, o, o.resultsDir, log);
    profile = { dir: profDir, run: res };
  }
  for (const srv of Object.values(servers)) await stop(srv.rec);
  env.loadavgAfter = os.loadavg()[0];
  if (profile) {
    const files = readdirSync(profile.dir).filter((f) => f.endsWith('.cpuprofile')).sort();
    if (files.length) {
      profile.file = join(profile.dir, files.at(-1));
      profile.summary = summarizeProfile(JSON.parse(readFileSync(profile.file, 'utf8')));
    }
  }

  // Summary: medians over rounds; "added" is paired per round against the direct row of the same set.
  const directOf = (row) => rows.find((x) => x.set === row.set && isDirect(x)).id;
  const summary = {};
  for (const row of rows) {
    const ok = rounds.map((r) => r.peers[row.id]).filter((x) => x?.available);
    if (!ok.length) {
      summary[row.id] = { label: row.label, set: row.set, available: false, reason: rounds[0].peers[row.id]?.reason ?? 'not run' };
      continue;
    }
    const m = (f) => median(ok.map(f));
    const d = directOf(row);
    const added = (k) => median(rounds.filter((r) => r.peers[row.id]?.available && r.peers[d]?.available).map((r) => r.peers[row.id].load[k] - r.peers[d].load[k]));
    const hasPaced = ok.every((x) => x.paced);
    const mp = (k) => (hasPaced ? m((x) => x.paced[k]) : null);
    summary[row.id] = {
      label: row.label,
      set: row.set,
      client: sideOf(row).client,
      server: sideOf(row).server,
      available: true,
      rounds: ok.length,
      cps: m((x) => x.load.cps),
      p50: m((x) => x.load.p50),
      p99: m((x) => x.load.p99),
      p999: m((x) => x.load.p999),
      addedP50: added('p50'),
      addedP99: added('p99'),
      pacedCps: mp('cps'),
      pacedP50: mp('p50'),
      pacedP99: mp('p99'),
      pacedP999: mp('p999'),
      cpuUsPerCall: m((x) => x.cpuUsPerCall),
      serverCpuUsPerCall: m((x) => x.serverCpuUsPerCall),
      clientCpuUsPerCall: m((x) => x.load.clientCpuUsPerCall),
      peakRssMb: m((x) => x.memory?.peakMb),
      idleRssMb: m((x) => x.memory?.idleMb),
      readyMs: m((x) => x.readyMs),
      grpcOk: ok.every((x) => x.grpc == null) ? null : ok.reduce((a, x) => a + (x.grpc?.source.ok ?? 0), 0),
      grpcTotal: ok.every((x) => x.grpc == null) ? null : ok.reduce((a, x) => a + (x.grpc?.source.total ?? 0), 0),
      errors: ok.reduce((a, x) => a + x.load.errors + x.load.mismatches, 0),
      flags: [...new Set(ok.flatMap((x) => x.flags))],
    };
  }

  const rateText = o.grpcRate.toLocaleString('en-US');
  const table = (set) => {
    const paced = rows.some((r) => r.set === set && summary[r.id].pacedP99 != null);
    const out = paced
      ? [
          `| peer | calls/s | p50 ms | p99 ms | added p50 | added p99 | at ${rateText}/s: p50 ms | p99 ms | p99.9 ms | µs proxy CPU/call | peak RSS MB |`,
          '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
        ]
      : ['| peer | calls/s | p50 ms | p99 ms | added p50 | added p99 | µs proxy CPU/call | peak RSS MB |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
    for (const row of rows.filter((r) => r.set === set)) {
      const s = summary[row.id];
      if (!s.available) {
        out.push(`| ${row.label}: not available (${s.reason.replace(/\|/g, '\\|').replace(/\n/g, ' ')}) |${'  |'.repeat(paced ? 10 : 7)}`);
        continue;
      }
      const d = isDirect(row);
      const pacedCols = paced ? ` ${fmt(s.pacedP50, 3)} | ${fmt(s.pacedP99, 3)} | ${fmt(s.pacedP999, 3)} |` : '';
      out.push(
        `| ${s.label} | ${fmt(s.cps, 0)}${s.errors || s.flags.length ? ' ⚠' : ''} | ${fmt(s.p50, 3)} | ${fmt(s.p99, 3)} | ${d ? '—' : signed(s.addedP50)} | ${d ? '—' : signed(s.addedP99)} |${pacedCols} ${d ? '—' : fmt(s.cpuUsPerCall, 1)} | ${d ? '—' : fmt(s.peakRssMb, 1)} |`,
      );
    }
    return out;
  };
  const detail = [
    '| peer | load | start→ready ms | idle RSS MB | p99.9 ms | server µs CPU/call | client µs CPU/call | grpc-status 0 / calls (proxy) | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const s = summary[row.id];
    if (!s.available) continue;
    const d = isDirect(row);
    detail.push(
      `| ${s.label} | ${s.client} → ${s.server} | ${d ? '—' : fmt(s.readyMs, 0)} | ${d ? '—' : fmt(s.idleRssMb, 1)} | ${fmt(s.p999, 3)} | ${fmt(s.serverCpuUsPerCall, 1)} | ${fmt(s.clientCpuUsPerCall, 1)} | ${s.grpcTotal == null ? '—' : `${s.grpcOk.toLocaleString('en-US')} / ${s.grpcTotal.toLocaleString('en-US')}`} | ${s.errors} |`,
    );
  }
  const two = summary['capa-2hop'];
  const one = summary['capa-1hop'];
  const direct = summary.direct;
  const met = (ok) => (ok ? '**met**' : '**not met**');
  const verdict = two.available
    ? `Targets (issue 4, 2 hops, ${o.streams} streams, ${sides.verdict.client} load): ≥ ${GRPC_TARGETS.cps.toLocaleString('en-US')} calls/s — ${fmt(two.cps, 0)}, ` +
      `${met(two.cps >= GRPC_TARGETS.cps)}; p99 ≤ ${GRPC_TARGETS.p99Ms} ms — ${fmt(two.p99, 3)} ms at saturation, ${met(two.p99 <= GRPC_TARGETS.p99Ms)}` +
      (two.pacedP99 != null ? `; ${fmt(two.pacedP99, 3)} ms at ${rateText} calls/s (${fmt(two.pacedCps, 0)} delivered), ${met(two.pacedP99 <= GRPC_TARGETS.p99Ms)}` : '') +
      (two.cpuUsPerCall
        ? `. At ${fmt(two.cpuUsPerCall, 1)} µs CPU/call (${one.available ? `${fmt(one.cpuUsPerCall, 1)} for one hop` : 'one hop n/a'}) the proxy could do at most ~${fmt(1e6 / two.cpuUsPerCall, 0)} calls/s on its one core ` +
          `(the target needs ≤ ${fmt(1e6 / GRPC_TARGETS.cps, 0)} µs/call for both hops together)`
        : '') +
      (direct.available && direct.cps < GRPC_TARGETS.cps
        ? `; and direct client → server reaches only ${fmt(direct.cps, 0)} calls/s here, so this load side cannot show the target even with a free proxy`
        : '')
    : 'Targets: capa-runtime not available';
  const verdictSide = sides.verdict;
  const out = [
    `## capa-runtime gRPC benchmark — ${env.date}`,
    '',
    `- kernel \`${env.kernel}\`, nproc ${env.nproc}, CPU ${env.cpuModel}, node ${env.node}, @grpc/grpc-js ${env.grpcJs}${env.h2load ? `, ${env.h2load}` : ''}`,
    `- pinning: ${pinning}`,
    `- load: ${o.streams} unary calls always in flight (closed loop), ${o.grpcSize}-byte message, ${o.durationS}s after a ${Math.max(1, o.warmupS)}s warm-up; ` +
      `latency = call → reply at that load; medians over ${o.rounds} interleaved round(s)`,
    `- verdict rows: client ${CLIENT_TEXT[verdictSide.client](o)}; server ${SERVER_TEXT[verdictSide.server](o)}` +
      (o.grpcRate > 0 && verdictSide.client === 'h2load' ? `; then the same for ${o.durationS}s paced at ${rateText} calls/s in all (h2load --rps per connection; the "at ${rateText}/s" columns)` : ''),
    ...(sides.reference ? [`- reference rows (what an app on @grpc/grpc-js sees): client ${CLIENT_TEXT.grpcjs(o)}; server ${SERVER_TEXT.grpcjs(o)}`] : []),
    `- capa-runtime: ${env.capa}; 2 hops = client → listener grpc-outbound (h2c) → cluster inbound-hop (http2) → listener grpc-inbound → cluster grpc-upstream (http2) → server, one process`,
    `- ${loadNote(env)}`,
    '',
    ...table('verdict'),
    '',
    ...(sides.reference ? ['Reference rows, @grpc/grpc-js client and server:', '', ...table('reference'), ''] : []),
    ...detail,
    '',
    verdict,
    '',
  ];
  const flagged = Object.values(summary).filter((s) => s.available && s.flags.length);
  if (flagged.length) {
    out.push('**Flags:**');
    for (const s of flagged) out.push(`- ${s.label}: ${s.flags.join('; ')}`);
    out.push('');
  }
  if (profile?.summary) {
    out.push(`**Profile** (capa-runtime, 2 hops, ${verdictSide.client} load, \`node --cpu-prof\`; ${profile.file}):`, '', profileMarkdown(profile.summary), '');
  }
  return { markdown: out.join('\n'), json: { suite: 'grpc', environment: env, pinning, options: o, targets: GRPC_TARGETS, sides, rounds, summary, profile } };
}

function execText(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return cmd;
  }
}

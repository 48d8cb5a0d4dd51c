#!/usr/bin/env node
// capa-runtime benchmark: capa-runtime vs http-proxy vs nginx in front of an nginx upstream.
// See bench/README.md. Usage:
//   node bench/run.mjs [--rounds 2] [--duration 10s] [--quick] [--peers a,b] [--json-only]
//   CAPA_CMD='node /path/to/other/main.js --config x.yaml' node bench/run.mjs
import { existsSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  cleanup,
  freePorts,
  httpGet,
  installCleanupHandlers,
  pinSelf,
  run,
  start,
  stop,
  waitReady,
} from './lib/procs.mjs';
import { runWrk } from './lib/wrk.mjs';
import { treeCpu, cpuDelta, treeMemory, CLK_TCK } from './lib/cpu.mjs';
import { BODY, NGINX, proxyConf, startNginx, upstreamConf } from './lib/nginx.mjs';
import { renderTables, summarize } from './lib/table.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const ROOT = dirname(BENCH_DIR);

// ---------------------------------------------------------------------------------------------
// Options

const HELP = `usage: node bench/run.mjs [options]

  --rounds N          interleaved rounds per peer (default 2); the table shows medians
  --duration D        wrk measurement time per peer and round (default 10s; e.g. 30s, 1m)
  --quick             --duration 3s and a 3 s latency probe
  --warmup D          wrk warm-up before each measurement (default 2s)
  --latency-duration D  paced low-load latency probe length (default 5s)
  --connections N     wrk connections (default 32)
  --peers LIST        comma list of capa-runtime,capa-runtime-filters,capa-runtime-c2,http-proxy,nginx (direct always runs)
  --proxy-cpu C       core the proxy is pinned to (default 0)
  --load-cpu C        core for wrk, the latency client and the upstream (default 1)
  --ready-timeout D   how long capa-runtime may take to become ready (default 5s)
  --suite S           http (default), grpc, tcp, runtime, or all (http, grpc, tcp, then runtime); see bench/README.md
  --streams N         grpc: concurrent unary calls in flight on the one channel (default 16)
  --grpc-size N       grpc: message size in bytes (default 32)
  --tcp-bytes SIZE    tcp: bytes per transfer (default 2GiB; e.g. 512MiB, 4GiB, 1e9)
  --tcp-chunk SIZE    tcp: client write size (default 1MiB)
  --profile           grpc/tcp/runtime: one extra capa-runtime run under node --cpu-prof, summarised in the report
                      (runtime: also done by itself for each group of targets not met)
  --callers N         runtime: concurrent state callers and closed-loop publishers (default 32)
  --publish-via P     runtime: http (Dapr POST /v1.0/publish, default: the cheaper path for the Node load
                      generator) or grpc (Layotto PublishEvent)
  --value-size N      runtime: state value size in bytes (default 64)
  --grpc-client C     grpc and runtime: the verdict rows' load generator: h2load (nghttp2's C client, the
                      default when /usr/bin/h2load exists: no GC pauses of its own in the latencies; Debian
                      package nghttp2-client), h2 (bench/lib/h2grpc.mjs on node:http2) or grpcjs
  --grpc-sessions N   grpc and runtime: h2c connections the load generator uses (default 4; runtime
                      reports a 1-connection row too)
  --grpc-rate N       grpc: after each closed-loop h2load run, the same calls paced at N calls/s in all
                      (default 5000, issue 4's rate; 0 = off)
  --grpc-echo I       grpc: the verdict rows' echo server: h2 (default, capa-runtime's own HTTP/2
                      connection, no GC pauses to speak of) or node (raw node:http2)

environment:
  CAPA_CMD            command line to bench instead of "bin/capa-runtime --config bench/proxy.yaml"
                      (run through sh; gets the same env ports; must answer GET :$ADMIN_PORT/ready)
  CAPA_MAIN           grpc/tcp/runtime suites: main.js to run with node instead of bin/capa-runtime
                      (with their own bench/*.yaml)
  CAPA_NODE_ARGS      more node/V8 flags for capa-runtime (bin/capa-runtime passes them on)
  NGINX_BIN           nginx binary (default /usr/sbin/nginx)
`;

function parseDuration(text, name) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(String(text).trim());
  if (!m) throw new Error(`bad ${name}: ${text} (use e.g. 10s, 500ms, 1m)`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

const { values: argv } = parseArgs({
  options: {
    rounds: { type: 'string', default: '2' },
    duration: { type: 'string' },
    quick: { type: 'boolean', default: false },
    warmup: { type: 'string', default: '2s' },
    'latency-duration': { type: 'string' },
    connections: { type: 'string', default: '32' },
    peers: { type: 'string' },
    'proxy-cpu': { type: 'string', default: '0' },
    'load-cpu': { type: 'string', default: '1' },
    'ready-timeout': { type: 'string', default: '5s' },
    suite: { type: 'string', default: 'http' },
    streams: { type: 'string', default: '16' },
    'grpc-size': { type: 'string', default: '32' },
    'tcp-bytes': { type: 'string', default: '2GiB' },
    'tcp-chunk': { type: 'string', default: '1MiB' },
    profile: { type: 'boolean', default: false },
    callers: { type: 'string', default: '32' },
    'publish-via': { type: 'string', default: 'http' },
    'value-size': { type: 'string', default: '64' },
    'grpc-client': { type: 'string', default: existsSync('/usr/bin/h2load') ? 'h2load' : 'h2' },
    'grpc-sessions': { type: 'string', default: '4' },
    'grpc-rate': { type: 'string', default: '5000' },
    'grpc-echo': { type: 'string', default: 'h2' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function parseSize(text, name) {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?$/i.exec(String(text).trim());
  if (!m) throw new Error(`bad ${name}: ${text} (use e.g. 2GiB, 512MiB, 1e9)`);
  const unit = { b: 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, kb: 1e3, mb: 1e6, gb: 1e9 }[(m[2] ?? 'b').toLowerCase()];
  return Math.round(Number(m[1]) * unit);
}

const SUITES = { http: ['http'], grpc: ['grpc'], tcp: ['tcp'], runtime: ['runtime'], all: ['http', 'grpc', 'tcp', 'runtime'] };
if (!SUITES[argv.suite]) throw new Error(`bad --suite: ${argv.suite} (http, grpc, tcp, runtime or all)`);
if (!['grpc', 'http'].includes(argv['publish-via'])) throw new Error(`bad --publish-via: ${argv['publish-via']} (grpc or http)`);
if (!['h2', 'node'].includes(argv['grpc-echo'])) throw new Error(`bad --grpc-echo: ${argv['grpc-echo']} (h2 or node)`);
if (!['h2load', 'h2', 'grpcjs'].includes(argv['grpc-client'])) throw new Error(`bad --grpc-client: ${argv['grpc-client']} (h2load, h2 or grpcjs)`);

const nproc = os.availableParallelism?.() ?? os.cpus().length;
const opts = {
  rounds: Math.max(1, Number(argv.rounds) || 2),
  durationS: Math.max(1, Math.round(parseDuration(argv.duration ?? (argv.quick ? '3s' : '10s'), '--duration'))),
  warmupS: Math.max(0, Math.round(parseDuration(argv.warmup, '--warmup'))),
  latencyMs: Math.round(parseDuration(argv['latency-duration'] ?? (argv.quick ? '3s' : '5s'), '--latency-duration') * 1000),
  connections: Math.max(1, Number(argv.connections) || 32),
  proxyCpu: argv['proxy-cpu'],
  loadCpu: argv['load-cpu'],
  allCpus: nproc > 1 ? `0-${nproc - 1}` : '0',
  readyTimeoutMs: Math.round(parseDuration(argv['ready-timeout'], '--ready-timeout') * 1000),
  capaCmd: process.env.CAPA_CMD || null,
};
if (nproc < 2) {
  console.error('warning: fewer than 2 cores; proxy and load generator share core 0');
  opts.proxyCpu = '0';
  opts.loadCpu = '0';
}

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Peers

const capaDescr = opts.capaCmd ? `CAPA_CMD=${opts.capaCmd}` : 'bin/capa-runtime --config bench/proxy.yaml';

/** Start a capa-runtime (or CAPA_CMD) process; ready = admin GET /ready answers 200. */
async function startCapa(name, extraArgs, cpus, upstreamPort, config = 'bench/proxy.yaml') {
  if (!opts.capaCmd) {
    if (!existsSync(join(ROOT, 'dist/main.js'))) return { reason: 'dist/main.js missing — run npm run build' };
    if (!existsSync(join(ROOT, config))) return { reason: `${config} missing` };
  }
  const [listen, admin, metrics, prom, readyPort, api, grpc] = await freePorts(7);
  const env = {
    LISTEN_PORT: String(listen),
    UPSTREAM_HOST: '127.0.0.1',
    UPSTREAM_PORT: String(upstreamPort),
    ADMIN_PORT: String(admin),
    METRICS_PORT: String(metrics),
    PROM_PORT: String(prom),
    READY_PORT: String(readyPort),
    API_PORT: String(api),
    GRPC_PORT: String(grpc),
  };
  const rec = opts.capaCmd
    ? start(name, 'sh', ['-c', `exec ${opts.capaCmd} ${extraArgs.join(' ')}`], { cpus, env, cwd: ROOT })
    : start(name, join(ROOT, 'bin/capa-runtime'), ['--config', config, ...extraArgs], { cpus, env, cwd: ROOT });
  const ready = await waitReady(rec, `http://127.0.0.1:${admin}/ready`, opts.readyTimeoutMs);
  if (!ready.ok) {
    await stop(rec);
    return { reason: ready.reason };
  }
  return { rec, port: listen, readyMs: ready.ms, env };
}

/** Start a peer whose readiness is "GET / through it answers 200". */
async function startByPort(rec, port, timeoutMs = 10_000) {
  const ready = await waitReady(rec, `http://127.0.0.1:${port}/`, timeoutMs);
  if (!ready.ok) {
    await stop(rec);
    return { reason: ready.reason };
  }
  return { rec, port, readyMs: ready.ms };
}

const PEERS = [
  {
    id: 'capa-runtime',
    label: 'capa-runtime',
    pinning: `core ${opts.proxyCpu} (taskset -c ${opts.proxyCpu})`,
    start: (up) => startCapa('capa-runtime', [], opts.proxyCpu, up),
  },
  {
    id: 'capa-runtime-filters',
    label: 'capa-runtime, all filters on',
    pinning: `core ${opts.proxyCpu} (taskset -c ${opts.proxyCpu})`,
    start: (up) => startCapa('capa-runtime-filters', [], opts.proxyCpu, up, 'bench/proxy-all-filters.yaml'),
  },
  {
    id: 'capa-runtime-c2',
    label: 'capa-runtime --concurrency 2',
    pinning: `not pinned to one core: primary + 2 workers may use cores ${opts.allCpus} (shared with load generator)`,
    start: (up) => startCapa('capa-runtime-c2', ['--concurrency', '2'], opts.allCpus, up),
  },
  {
    id: 'http-proxy',
    label: 'http-proxy (node)',
    pinning: `core ${opts.proxyCpu} (taskset -c ${opts.proxyCpu})`,
    start: async (up) => {
      const [port] = await freePorts(1);
      const rec = start('http-proxy', process.execPath, [join(BENCH_DIR, 'peers/http-proxy.mjs')], {
        cpus: opts.proxyCpu,
        env: { LISTEN_PORT: String(port), UPSTREAM_HOST: '127.0.0.1', UPSTREAM_PORT: String(up) },
        cwd: ROOT,
      });
      return startByPort(rec, port);
    },
  },
  {
    id: 'nginx',
    label: 'nginx (proxy)',
    pinning: `core ${opts.proxyCpu} (master + 1 worker, taskset -c ${opts.proxyCpu})`,
    start: async (up) => {
      const [port] = await freePorts(1);
      const rec = startNginx('nginx-proxy', (dir) => proxyConf(dir, port, up), { cpus: opts.proxyCpu });
      return startByPort(rec, port);
    },
  },
  {
    id: 'direct',
    label: 'direct (no proxy)',
    pinning: '— (wrk → upstream)',
    start: async (up) => ({ rec: null, port: up, readyMs: null }),
  },
];

let peers = PEERS;
if (argv.peers) {
  const wanted = new Set(argv.peers.split(',').map((s) => s.trim()));
  wanted.add('direct');
  const unknown = [...wanted].filter((id) => !PEERS.some((p) => p.id === id));
  if (unknown.length) throw new Error(`unknown peer(s): ${unknown.join(', ')}`);
  peers = PEERS.filter((p) => wanted.has(p.id));
}

// ---------------------------------------------------------------------------------------------
// Measurement

async function pacedLatency(url) {
  const res = await run(
    process.execPath,
    [join(BENCH_DIR, 'lib/paced.mjs'), '--url', url, '--conns', '4', '--interval', '5', '--duration', String(opts.latencyMs)],
    { cpus: opts.loadCpu, timeoutMs: opts.latencyMs + 30_000 },
  );
  if (res.code !== 0) throw new Error(`paced client failed (${res.code ?? res.signal}): ${res.stderr.trim()}`);
  return JSON.parse(res.stdout.trim().split('\n').at(-1));
}

async function measure(peer, upstream) {
  const started = await peer.start(upstream.port);
  if (!started.rec && peer.id !== 'direct') return { available: false, reason: started.reason };
  const { rec, port } = started;
  const url = `http://127.0.0.1:${port}/`;
  const flags = [];
  try {
    // Sanity: one request through the peer must return the upstream's body.
    let probe = null;
    for (let i = 0; i < 20; i++) {
      try {
        probe = await httpGet(url, 1000);
        if (probe.status === 200) break;
      } catch (err) {
        probe = { status: null, body: '', error: err.code ?? err.message };
      }
      await sleep(50);
    }
    if (probe?.status !== 200) {
      return {
        available: false,
        reason: `GET ${url} through the proxy answered ${probe?.status ?? probe?.error}`,
      };
    }
    if (probe.body !== BODY) flags.push('response body differs from the upstream body');

    const idle = rec ? treeMemory(rec.pid) : null;
    if (opts.warmupS > 0) {
      const warm = await runWrk(url, { seconds: opts.warmupS, connections: opts.connections, cpus: opts.loadCpu });
      if (warm.non2xx || warm.socketErrorTotal) flags.push(`warm-up: ${warm.non2xx} non-2xx, ${warm.socketErrorTotal} socket errors`);
    }

    const cpu0 = rec ? treeCpu(rec.pid) : null;
    const up0 = treeCpu(upstream.rec.pid);
    const wrk = await runWrk(url, { seconds: opts.durationS, connections: opts.connections, cpus: opts.loadCpu });
    const up1 = treeCpu(upstream.rec.pid);
    const cpu1 = rec ? treeCpu(rec.pid) : null;
    const cpu = rec ? cpuDelta(cpu0, cpu1) : null;
    const upCpu = cpuDelta(up0, up1);
    const loaded = rec ? treeMemory(rec.pid) : null;
    if (wrk.non2xx) flags.push(`${wrk.non2xx} non-2xx responses under load`);
    if (wrk.socketErrorTotal) flags.push(`socket errors under load: ${JSON.stringify(wrk.socketErrors)}`);

    const paced = await pacedLatency(url);
    if (paced.non2xx || paced.errors) flags.push(`latency probe: ${paced.non2xx} non-2xx, ${paced.errors} errors`);
    // A few late sends are scheduler noise; more than 1% means this was not a low-load probe.
    if (paced.late > paced.count / 100) flags.push(`latency probe: ${paced.late} of ${paced.count} sends fell behind schedule`);
    const after = rec ? treeMemory(rec.pid) : null;

    const { raw: wrkRaw, ...wrkParsed } = wrk;
    return {
      available: true,
      readyMs: started.readyMs,
      processes: cpu1?.procs.length ?? 0,
      wrk: wrkParsed,
      wrkRaw,
      cpu,
      cpuUsPerReq: cpu ? (cpu.seconds * 1e6) / wrk.requests : null,
      upstreamCpu: upCpu,
      upstreamCpuUsPerReq: (upCpu.seconds * 1e6) / wrk.requests,
      paced,
      memory: rec
        ? {
            idleMb: idle.rssMb,
            loadedRssMb: loaded.rssMb,
            peakMb: Math.max(loaded.hwmMb, after.hwmMb),
            perProcess: after.procs,
          }
        : null,
      flags,
    };
  } catch (err) {
    return { available: false, reason: `measurement failed: ${err.message}` };
  } finally {
    if (rec) await stop(rec);
  }
}

function environment() {
  const safe = (fn) => {
    try {
      return fn();
    } catch (err) {
      return `unknown (${err.message})`;
    }
  };
  const cpuModel = safe(() => {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m);
    return m ? m[1].trim() : os.cpus()[0]?.model ?? 'unknown';
  });
  return {
    date: new Date().toISOString(),
    kernel: os.release(),
    nproc,
    cpuModel,
    node: process.version,
    nginx: safe(() => execFileSync('sh', ['-c', `"${NGINX}" -v 2>&1`], { encoding: 'utf8' }).trim()),
    wrk: safe(() => execFileSync('sh', ['-c', 'wrk -v 2>&1 | head -1'], { encoding: 'utf8' }).trim()),
    clkTck: CLK_TCK,
    capa: capaDescr,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function main() {
  installCleanupHandlers();
  const env = environment();
  env.loadavgBefore = os.loadavg()[0];
  if (env.loadavgBefore > 0.5 * nproc) {
    log(`warning: load average ${env.loadavgBefore.toFixed(2)} on ${nproc} cores — other work is running; expect noisy numbers`);
  }
  // The orchestrator itself is idle during measurements, but keep it off the proxy core.
  const selfPinned = pinSelf(opts.loadCpu);
  const pinning =
    `proxy on core ${opts.proxyCpu} (taskset -c ${opts.proxyCpu}); wrk, latency client, upstream nginx` +
    `${selfPinned ? ' and this orchestrator' : ''} on core ${opts.loadCpu}; ` +
    `capa-runtime --concurrency 2 is not pinned to one core (taskset -c ${opts.allCpus}).`;
  log(`${env.date} kernel ${env.kernel}, ${nproc} cores, ${env.cpuModel}`);
  log(`rounds ${opts.rounds}, duration ${opts.durationS}s, warm-up ${opts.warmupS}s, latency probe ${opts.latencyMs}ms`);

  const [upPort] = await freePorts(1);
  const upRec = startNginx('nginx-upstream', (dir) => upstreamConf(dir, upPort), { cpus: opts.loadCpu });
  const upReady = await waitReady(upRec, `http://127.0.0.1:${upPort}/`, 10_000);
  if (!upReady.ok) throw new Error(`upstream nginx did not start: ${upReady.reason}`);
  const upstream = { rec: upRec, port: upPort };
  log(`upstream nginx pid ${upRec.pid} on 127.0.0.1:${upPort}`);

  const rounds = [];
  const unavailable = new Map(); // peer id -> reason; skip later rounds once it failed to start
  for (let r = 1; r <= opts.rounds; r++) {
    const round = { round: r, peers: {} };
    rounds.push(round);
    for (const peer of peers) {
      if (unavailable.has(peer.id)) {
        round.peers[peer.id] = { available: false, reason: unavailable.get(peer.id) };
        continue;
      }
      log(`round ${r}/${opts.rounds}: ${peer.label}`);
      const res = await measure(peer, upstream);
      if (res.flags) res.flags = res.flags.map((f) => `round ${r}: ${f}`);
      round.peers[peer.id] = res;
      if (!res.available) {
        log(`  ${peer.label}: not available (${res.reason})`);
        if (r === 1) unavailable.set(peer.id, res.reason);
      } else {
        log(
          `  ${Math.round(res.wrk.rps)} req/s, ` +
            `${res.cpuUsPerReq == null ? '—' : res.cpuUsPerReq.toFixed(1)} µs CPU/req, ` +
            `p50 ${res.paced.p50?.toFixed(3)} ms, p99 ${res.paced.p99?.toFixed(3)} ms` +
            (res.flags.length ? `  FLAGS: ${res.flags.join('; ')}` : ''),
        );
      }
    }
  }
  await stop(upRec);
  env.loadavgAfter = os.loadavg()[0];

  const summary = summarize(peers, rounds);
  const tables = renderTables(peers, summary);
  const flagged = Object.values(summary).filter((s) => s.available && (s.flags.length || s.non2xx || s.socketErrors));

  const out = [
    `## capa-runtime benchmark — ${env.date}`,
    '',
    `- kernel \`${env.kernel}\`, nproc ${env.nproc}, CPU ${env.cpuModel}, node ${env.node}, ${env.nginx}, ${env.wrk}`,
    `- pinning: ${pinning}`,
    `- load: wrk -t1 -c${opts.connections} -d${opts.durationS}s after a ${opts.warmupS}s warm-up; ` +
      `latency: 4 keep-alive connections × 1 request / 5 ms for ${opts.latencyMs / 1000}s; ` +
      `medians over ${opts.rounds} interleaved round(s); upstream: nginx return 200 (${Buffer.byteLength(BODY)}-byte body)`,
    `- capa-runtime command: ${capaDescr}`,
    `- 1-min load average before/after: ${env.loadavgBefore.toFixed(2)} / ${env.loadavgAfter.toFixed(2)}` +
      (Math.max(env.loadavgBefore, env.loadavgAfter) > 0.5 * nproc ? ' — other work was running on the machine; numbers are noisy' : ''),
    '',
    tables.main,
    '',
    tables.detail,
    '',
  ];
  if (flagged.length) {
    out.push('**Flags:**');
    for (const s of flagged) out.push(`- ${s.label}: ${[...s.flags, `${s.non2xx} non-2xx`, `${s.socketErrors} socket errors`].join('; ')}`);
    out.push('');
  }
  process.stdout.write(`${out.join('\n')}\n`);

  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${env.date.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify({ environment: env, pinning, options: opts, peers: peers.map(({ start: _s, ...p }) => p), rounds, summary }, null, 2)}\n`);
  log(`raw results: ${file}`);
}

/** The grpc, tcp and runtime suites (bench/grpc.mjs, tcp.mjs, runtime.mjs): markdown to stdout, JSON to results/. */
async function runSuite(suite) {
  installCleanupHandlers();
  pinSelf(opts.loadCpu);
  const resultsDir = join(BENCH_DIR, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const suiteOpts = {
    ...opts,
    streams: Math.max(1, Number(argv.streams) || 16),
    grpcSize: Math.max(1, Number(argv['grpc-size']) || 32),
    tcpBytes: Math.max(1, parseSize(argv['tcp-bytes'], '--tcp-bytes')),
    tcpChunk: Math.max(1024, parseSize(argv['tcp-chunk'], '--tcp-chunk')),
    profile: argv.profile,
    durationGiven: argv.duration != null,
    callers: Math.max(1, Number(argv.callers) || 32),
    publishVia: argv['publish-via'],
    valueSize: Math.max(1, Number(argv['value-size']) || 64),
    grpcClient: argv['grpc-client'],
    grpcSessions: Math.max(1, Number(argv['grpc-sessions']) || 4),
    grpcRate: Math.max(0, Number(argv['grpc-rate']) || 0),
    grpcEcho: argv['grpc-echo'],
    resultsDir,
  };
  const { markdown, json } =
    suite === 'grpc'
      ? await (await import('./grpc.mjs')).runGrpcSuite(suiteOpts, log)
      : suite === 'tcp'
        ? await (await import('./tcp.mjs')).runTcpSuite(suiteOpts, log)
        : await (await import('./runtime.mjs')).runRuntimeSuite(suiteOpts, log);
  process.stdout.write(`${markdown}\n`);
  const file = join(resultsDir, `${json.environment.date.replace(/[:.]/g, '-')}-${suite}.json`);
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  log(`raw results: ${file}`);
}

try {
  for (const suite of SUITES[argv.suite]) {
    if (suite === 'http') await main();
    else await runSuite(suite);
  }
  await cleanup();
} catch (err) {
  if (err.message !== 'benchmark is stopping') console.error(`bench failed: ${err.stack ?? err.message}`);
  await cleanup();
  process.exitCode = 1;
}

// gRPC suite (node bench/run.mjs --suite grpc): unary Echo through capa-runtime, two hops
// (outbound listener → http2 cluster → inbound listener → http2 cluster → server, one process,
// bench/grpc-proxy.yaml), one hop, and direct. See bench/README.md, "gRPC suite".
import { join } from 'node:path';
import { readFileSync, readdirSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { run, start, stop, freePorts } from './lib/procs.mjs';
import { treeCpu, cpuDelta, treeMemory } from './lib/cpu.mjs';
import { median, fmt } from './lib/table.mjs';
import { startCapaConfig, waitOutput, ROOT, capaMain } from './lib/capa.mjs';
import { sysinfo, loadNote } from './lib/sysinfo.mjs';
import { summarizeProfile, profileMarkdown } from './lib/cpuprofile.mjs';

const BENCH_DIR = join(ROOT, 'bench');
export const GRPC_TARGETS = { cps: 5000, p99Ms: 5 };

const PEERS = [
  { id: 'capa-2hop', label: 'capa-runtime, 2 hops (outbound → inbound)', portVar: 'LISTEN_PORT' },
  { id: 'capa-1hop', label: 'capa-runtime, 1 hop', portVar: 'ONEHOP_PORT' },
  { id: 'direct', label: 'direct (no proxy)' },
];

function signed(v, d = 3) {
  return v == null ? '—' : `${v >= 0 ? '+' : ''}${fmt(v, d)}`;
}

async function load(target, ms, o) {
  const res = await run(
    process.execPath,
    [join(BENCH_DIR, 'lib/grpc-load.mjs'), '--target', target, '--concurrency', String(o.streams), '--duration', String(ms), '--size', String(o.grpcSize)],
    { cpus: o.loadCpu, timeoutMs: ms + 30_000 },
  );
  if (res.code !== 0) throw new Error(`grpc client failed (${res.code ?? res.signal}): ${res.stderr.trim().slice(-400)}`);
  return JSON.parse(res.stdout.trim().split('\n').at(-1));
}

async function measure(peer, server, o, nodeArgs = []) {
  let rec = null;
  let readyMs = null;
  let port = server.port;
  if (peer.id !== 'direct') {
    const s = await startCapaConfig({
      name: peer.id,
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
    port = Number(s.env[peer.portVar]);
  }
  const target = `127.0.0.1:${port}`;
  const flags = [];
  try {
    const idle = rec ? treeMemory(rec.pid) : null;
    // Warm-up doubles as the sanity check: calls must go through, without errors.
    const warm = await load(target, Math.max(1000, o.warmupS * 1000), o);
    if (warm.calls === 0) return { available: false, reason: `no call succeeded through ${target}: ${warm.firstError}` };
    if (warm.errors || warm.mismatches) flags.push(`warm-up: ${warm.errors} errors (${warm.firstError}), ${warm.mismatches} mismatched replies`);
    const cpu0 = rec ? treeCpu(rec.pid) : null;
    const srv0 = treeCpu(server.rec.pid);
    const res = await load(target, o.durationS * 1000, o);
    const srv1 = treeCpu(server.rec.pid);
    const cpu = rec ? cpuDelta(cpu0, treeCpu(rec.pid)) : null;
    const srvCpu = cpuDelta(srv0, srv1);
    const after = rec ? treeMemory(rec.pid) : null;
    if (res.errors) flags.push(`${res.errors} failed calls ${JSON.stringify(res.errorCodes)}: ${res.firstError}`);
    if (res.mismatches) flags.push(`${res.mismatches} replies did not echo their request`);
    return {
      available: true,
      readyMs,
      load: res,
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

/** One extra two-hop run of capa-runtime under node --cpu-prof; returns the summary. */
async function profilePass(server, o, dir, log) {
  const profDir = join(dir, 'grpc-cpuprofile');
  mkdirSync(profDir, { recursive: true });
  log(`profile: capa-runtime (2 hops) under --cpu-prof, ${o.durationS}s`);
  const res = await measure(PEERS[0], server, o, ['--cpu-prof', `--cpu-prof-dir=${profDir}`]);
  return { res, profDir };
}

export async function runGrpcSuite(o, log) {
  const env = sysinfo({ grpcJs: JSON.parse(readFileSync(join(ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')).version, capa: `node ${capaMain()} --config bench/grpc-proxy.yaml` });
  const pinning =
    `proxy on core ${o.proxyCpu} (taskset -c ${o.proxyCpu}); gRPC client (taskset -c ${o.loadCpu}) and gRPC server ` +
    `(taskset -c ${o.loadCpu}) share core ${o.loadCpu}`;
  const [srvPort] = await freePorts(1);
  const srvRec = start('grpc-server', process.execPath, [join(BENCH_DIR, 'lib/grpc-server.mjs'), '--port', String(srvPort)], { cpus: o.loadCpu, cwd: ROOT });
  const up = await waitOutput(srvRec, 'listening');
  if (!up.ok) throw new Error(`gRPC server did not start: ${up.reason}`);
  const server = { rec: srvRec, port: srvPort };
  log(`grpc: server pid ${srvRec.pid} on 127.0.0.1:${srvPort}; ${o.rounds} round(s) × ${o.durationS}s, ${o.streams} streams`);

  const rounds = [];
  const unavailable = new Map();
  for (let r = 1; r <= o.rounds; r++) {
    const round = { round: r, peers: {} };
    rounds.push(round);
    for (const peer of PEERS) {
      if (unavailable.has(peer.id)) {
        round.peers[peer.id] = { available: false, reason: unavailable.get(peer.id) };
        continue;
      }
      log(`grpc round ${r}/${o.rounds}: ${peer.label}`);
      const res = await measure(peer, server, o);
      round.peers[peer.id] = res;
      if (!res.available) {
        log(`  not available (${res.reason})`);
        if (r === 1) unavailable.set(peer.id, res.reason);
      } else {
        log(
          `  ${Math.round(res.load.cps)} calls/s, p50 ${res.load.p50.toFixed(3)} ms, p99 ${res.load.p99.toFixed(3)} ms, ` +
            `${res.cpuUsPerCall == null ? '—' : res.cpuUsPerCall.toFixed(1)} µs proxy CPU/call` +
            (res.flags.length ? `  FLAGS: ${res.flags.join('; ')}` : ''),
        );
      }
    }
  }
  let profile = null;
  if (o.profile) {
    const { res, profDir } = await profilePass(server, o, o.resultsDir, log);
    profile = { dir: profDir, run: res };
  }
  await stop(srvRec);
  env.loadavgAfter = os.loadavg()[0];
  if (profile) {
    const files = readdirSync(profile.dir).filter((f) => f.endsWith('.cpuprofile')).sort();
    if (files.length) {
      profile.file = join(profile.dir, files.at(-1));
      profile.summary = summarizeProfile(JSON.parse(readFileSync(profile.file, 'utf8')));
    }
  }

  // Summary: medians over rounds; "added" is paired per round against direct.
  const summary = {};
  for (const peer of PEERS) {
    const ok = rounds.map((r) => r.peers[peer.id]).filter((x) => x?.available);
    if (!ok.length) {
      summary[peer.id] = { label: peer.label, available: false, reason: rounds[0].peers[peer.id]?.reason ?? 'not run' };
      continue;
    }
    const m = (f) => median(ok.map(f));
    const added = (k) => median(rounds.filter((r) => r.peers[peer.id]?.available && r.peers.direct?.available).map((r) => r.peers[peer.id].load[k] - r.peers.direct.load[k]));
    summary[peer.id] = {
      label: peer.label,
      available: true,
      rounds: ok.length,
      cps: m((x) => x.load.cps),
      p50: m((x) => x.load.p50),
      p99: m((x) => x.load.p99),
      p999: m((x) => x.load.p999),
      addedP50: added('p50'),
      addedP99: added('p99'),
      cpuUsPerCall: m((x) => x.cpuUsPerCall),
      serverCpuUsPerCall: m((x) => x.serverCpuUsPerCall),
      clientCpuUsPerCall: m((x) => x.load.clientCpuUsPerCall),
      peakRssMb: m((x) => x.memory?.peakMb),
      idleRssMb: m((x) => x.memory?.idleMb),
      readyMs: m((x) => x.readyMs),
      errors: ok.reduce((a, x) => a + x.load.errors + x.load.mismatches, 0),
      flags: [...new Set(ok.flatMap((x) => x.flags))],
    };
  }

  const main = ['| peer | calls/s | p50 ms | p99 ms | added p50 | added p99 | µs proxy CPU/call | peak RSS MB |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |'];
  const detail = [
    '| peer | pinning (proxy) | start→ready ms | idle RSS MB | p99.9 ms | server µs CPU/call | client µs CPU/call | errors |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const peer of PEERS) {
    const s = summary[peer.id];
    if (!s.available) {
      main.push(`| ${peer.label}: not available (${s.reason.replace(/\|/g, '\\|').replace(/\n/g, ' ')}) |  |  |  |  |  |  |  |`);
      continue;
    }
    const d = peer.id === 'direct';
    main.push(
      `| ${s.label} | ${fmt(s.cps, 0)}${s.errors ? ' ⚠' : ''} | ${fmt(s.p50, 3)} | ${fmt(s.p99, 3)} | ${d ? '—' : signed(s.addedP50)} | ${d ? '—' : signed(s.addedP99)} | ${d ? '—' : fmt(s.cpuUsPerCall, 1)} | ${d ? '—' : fmt(s.peakRssMb, 1)} |`,
    );
    detail.push(
      `| ${s.label} | ${d ? '— (client → server)' : `core ${o.proxyCpu}`} | ${d ? '—' : fmt(s.readyMs, 0)} | ${d ? '—' : fmt(s.idleRssMb, 1)} | ${fmt(s.p999, 3)} | ${fmt(s.serverCpuUsPerCall, 1)} | ${fmt(s.clientCpuUsPerCall, 1)} | ${s.errors} |`,
    );
  }
  const two = summary['capa-2hop'];
  const verdict = two.available
    ? `Targets (issue 4, 2 hops, ${o.streams} streams): ≥ ${GRPC_TARGETS.cps.toLocaleString('en-US')} calls/s — ${fmt(two.cps, 0)}, ` +
      `${two.cps >= GRPC_TARGETS.cps ? '**met**' : '**not met**'}; p99 ≤ ${GRPC_TARGETS.p99Ms} ms — ${fmt(two.p99, 3)} ms, ${two.p99 <= GRPC_TARGETS.p99Ms ? '**met**' : '**not met**'}` +
      (two.cpuUsPerCall
        ? `. At ${fmt(two.cpuUsPerCall, 1)} µs CPU/call the proxy could do at most ~${fmt(1e6 / two.cpuUsPerCall, 0)} calls/s on its one core ` +
          `(the target needs ≤ ${fmt(1e6 / GRPC_TARGETS.cps, 0)} µs/call for both hops together)`
        : '') +
      (summary.direct.available && summary.direct.cps < GRPC_TARGETS.cps
        ? `; and direct client → server reaches only ${fmt(summary.direct.cps, 0)} calls/s here (client + server on one core), so this box cannot show the target even with a free proxy`
        : '')
    : 'Targets: capa-runtime not available';
  const out = [
    `## capa-runtime gRPC benchmark — ${env.date}`,
    '',
    `- kernel \`${env.kernel}\`, nproc ${env.nproc}, CPU ${env.cpuModel}, node ${env.node}, @grpc/grpc-js ${env.grpcJs}`,
    `- pinning: ${pinning}`,
    `- load: one @grpc/grpc-js channel, ${o.streams} unary calls always in flight (closed loop), ${o.grpcSize}-byte message, ` +
      `${o.durationS}s after a ${Math.max(1, o.warmupS)}s warm-up; latency = call → callback at that load; medians over ${o.rounds} interleaved round(s)`,
    `- capa-runtime: ${env.capa}; 2 hops = client → listener grpc-outbound (h2c) → cluster inbound-hop (http2) → listener grpc-inbound → cluster grpc-upstream (http2) → server, one process`,
    `- ${loadNote(env)}`,
    '',
    ...main,
    '',
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
    out.push(`**Profile** (capa-runtime, 2 hops, \`node --cpu-prof\`; ${profile.file}):`, '', profileMarkdown(profile.summary), '');
  }
  return { markdown: out.join('\n'), json: { suite: 'grpc', environment: env, pinning, options: o, targets: GRPC_TARGETS, rounds, summary, profile } };
}

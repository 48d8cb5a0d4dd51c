// Opaque TCP suite (node bench/run.mjs --suite tcp): one bulk stream through a capa-runtime
// `protocol: tcp` listener (bench/tcp-proxy.yaml) to a sink, and direct. See bench/README.md,
// "TCP suite".
import { join } from 'node:path';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { run, start, stop, freePorts } from './lib/procs.mjs';
import { treeCpu, cpuDelta, treeMemory } from './lib/cpu.mjs';
import { median, fmt } from './lib/table.mjs';
import { processTree } from './lib/cpu.mjs';
import { startCapaConfig, waitOutput, ROOT, capaCommand } from './lib/capa.mjs';
import { sysinfo, loadNote } from './lib/sysinfo.mjs';
import { summarizeProfile, profileMarkdown } from './lib/cpuprofile.mjs';

const BENCH_DIR = join(ROOT, 'bench');
export const TCP_TARGET_GBPS = 1;
const WARMUP_BYTES = 256 * 2 ** 20;

// The sidecar raises glibc's trim threshold itself at start (native tuneMalloc) unless
// GLIBC_TUNABLES sets malloc; this puts glibc's default (128 KiB) back, to show what it saves.
export const GLIBC_DEFAULT_TRIM = 'glibc.malloc.trim_threshold=131072';

const PEERS = [
  { id: 'capa-runtime', label: 'capa-runtime (protocol: tcp; malloc tuned at start)' },
  { id: 'capa-runtime-glibc-trim', label: "capa-runtime with glibc's default heap trim", env: { GLIBC_TUNABLES: GLIBC_DEFAULT_TRIM } },
  { id: 'node-pipe', label: 'node net pipe (bench/peers/tcp-pipe.mjs)' },
  { id: 'direct', label: 'direct (no proxy)' },
];

/** Minor page faults (field 10 of /proc/<pid>/stat) summed over the process tree. */
function treeMinflt(rootPid) {
  let n = 0;
  for (const pid of processTree(rootPid)) {
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      n += Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[7]);
    } catch {
      /* gone */
    }
  }
  return n;
}

async function push(port, bytes, o) {
  const res = await run(
    process.execPath,
    [join(BENCH_DIR, 'lib/tcp-push.mjs'), '--port', String(port), '--bytes', String(bytes), '--chunk', String(o.tcpChunk)],
    { cpus: o.loadCpu, timeoutMs: 120_000 },
  );
  if (res.code !== 0) throw new Error(`tcp client failed (${res.code ?? res.signal}): ${res.stderr.trim().slice(-400)}`);
  return JSON.parse(res.stdout.trim().split('\n').at(-1));
}

async function measure(peer, sink, o, nodeArgs = []) {
  let rec = null;
  let readyMs = null;
  let port = sink.port;
  if (peer.id === 'node-pipe') {
    const [p] = await freePorts(1);
    rec = start(peer.id, process.execPath, [join(BENCH_DIR, 'peers/tcp-pipe.mjs')], {
      cpus: o.proxyCpu,
      env: { LISTEN_PORT: String(p), UPSTREAM_HOST: '127.0.0.1', UPSTREAM_PORT: String(sink.port) },
      cwd: ROOT,
    });
    const ok = await waitOutput(rec, 'listening');
    if (!ok.ok) {
      await stop(rec);
      return { available: false, reason: ok.reason };
    }
    port = p;
  } else if (peer.id !== 'direct') {
    const s = await startCapaConfig({
      name: peer.id,
      config: 'tcp-proxy.yaml',
      cpus: o.proxyCpu,
      env: { UPSTREAM_PORT: String(sink.port), ...peer.env },
      nodeArgs,
      readyTimeoutMs: o.readyTimeoutMs,
    });
    if (!s.rec) return { available: false, reason: s.reason };
    rec = s.rec;
    readyMs = s.readyMs;
    port = Number(s.env.LISTEN_PORT);
  }
  try {
    const idle = rec ? treeMemory(rec.pid) : null;
    await push(port, Math.min(WARMUP_BYTES, o.tcpBytes), o); // warm-up + sanity (the sink confirms every byte)
    const flt0 = rec ? treeMinflt(rec.pid) : 0;
    const cpu0 = rec ? treeCpu(rec.pid) : null;
    const sink0 = treeCpu(sink.rec.pid);
    const res = await push(port, o.tcpBytes, o);
    const sinkCpu = cpuDelta(sink0, treeCpu(sink.rec.pid));
    const cpu = rec ? cpuDelta(cpu0, treeCpu(rec.pid)) : null;
    const minfltPerGB = rec ? (treeMinflt(rec.pid) - flt0) / (res.bytes / 1e9) : null;
    const after = rec ? treeMemory(rec.pid) : null;
    return {
      available: true,
      readyMs,
      push: res,
      cpu,
      // CPU seconds per GB moved, and as a share of one core over the transfer.
      cpuSPerGB: cpu ? cpu.seconds / (res.bytes / 1e9) : null,
      cpuShare: cpu ? cpu.seconds / res.seconds : null,
      sysShareOfCpu: cpu && cpu.seconds > 0 ? cpu.systemSeconds / cpu.seconds : null,
      minfltPerGB,
      sinkCpuSPerGB: sinkCpu.seconds / (res.bytes / 1e9),
      clientCpuSPerGB: res.clientCpuS / (res.bytes / 1e9),
      memory: rec ? { idleMb: idle.rssMb, peakMb: after.hwmMb } : null,
    };
  } catch (err) {
    return { available: false, reason: `measurement failed: ${err.message}` };
  } finally {
    if (rec) await stop(rec, nodeArgs.length ? 15_000 : 3000);
  }
}

export async function runTcpSuite(o, log) {
  const env = sysinfo({ capa: capaCommand(['--config', 'bench/tcp-proxy.yaml']).descr });
  const pinning = `proxy on core ${o.proxyCpu} (taskset -c ${o.proxyCpu}); bulk client and sink share core ${o.loadCpu} (taskset -c ${o.loadCpu})`;
  const [sinkPort] = await freePorts(1);
  const sinkRec = start('tcp-sink', process.execPath, [join(BENCH_DIR, 'lib/tcp-sink.mjs'), '--port', String(sinkPort)], { cpus: o.loadCpu, cwd: ROOT });
  const up = await waitOutput(sinkRec, 'listening');
  if (!up.ok) throw new Error(`tcp sink did not start: ${up.reason}`);
  const sink = { rec: sinkRec, port: sinkPort };
  const gib = o.tcpBytes / 2 ** 30;
  log(`tcp: sink pid ${sinkRec.pid} on 127.0.0.1:${sinkPort}; ${o.rounds} round(s) × ${fmt(gib, 2)} GiB`);

  const rounds = [];
  for (let r = 1; r <= o.rounds; r++) {
    const round = { round: r, peers: {} };
    rounds.push(round);
    for (const peer of PEERS) {
      if (r > 1 && !rounds[0].peers[peer.id].available) {
        round.peers[peer.id] = rounds[0].peers[peer.id];
        continue;
      }
      log(`tcp round ${r}/${o.rounds}: ${peer.label}`);
      const res = await measure(peer, sink, o);
      round.peers[peer.id] = res;
      if (!res.available) log(`  not available (${res.reason})`);
      else log(`  ${res.push.gbps.toFixed(2)} GB/s in ${res.push.seconds.toFixed(2)} s` + (res.cpu ? `, proxy ${res.cpuSPerGB.toFixed(2)} CPU s/GB (${(res.cpuShare * 100).toFixed(0)}% of a core)` : ''));
    }
  }
  let profile = null;
  if (o.profile) {
    const dir = join(o.resultsDir, 'tcp-cpuprofile');
    mkdirSync(dir, { recursive: true });
    log(`profile: capa-runtime under --cpu-prof, ${fmt(gib, 2)} GiB`);
    const res = await measure(PEERS[0], sink, o, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort();
    profile = { dir, run: res };
    if (files.length) {
      profile.file = join(dir, files.at(-1));
      profile.summary = summarizeProfile(JSON.parse(readFileSync(profile.file, 'utf8')));
    }
  }
  await stop(sinkRec);
  env.loadavgAfter = os.loadavg()[0];

  const summary = {};
  for (const peer of PEERS) {
    const ok = rounds.map((r) => r.peers[peer.id]).filter((x) => x?.available);
    if (!ok.length) {
      summary[peer.id] = { label: peer.label, available: false, reason: rounds[0].peers[peer.id]?.reason ?? 'not run' };
      continue;
    }
    const m = (f) => median(ok.map(f));
    summary[peer.id] = {
      label: peer.label,
      available: true,
      rounds: ok.length,
      gbps: m((x) => x.push.gbps),
      gbpsMin: Math.min(...ok.map((x) => x.push.gbps)),
      gbpsMax: Math.max(...ok.map((x) => x.push.gbps)),
      seconds: m((x) => x.push.seconds),
      cpuSPerGB: m((x) => x.cpuSPerGB),
      cpuShare: m((x) => x.cpuShare),
      sysShareOfCpu: m((x) => x.sysShareOfCpu),
      minfltPerGB: m((x) => x.minfltPerGB),
      sinkCpuSPerGB: m((x) => x.sinkCpuSPerGB),
      clientCpuSPerGB: m((x) => x.clientCpuSPerGB),
      peakRssMb: m((x) => x.memory?.peakMb),
      idleRssMb: m((x) => x.memory?.idleMb),
      readyMs: m((x) => x.readyMs),
    };
  }
  const direct = summary.direct;
  const lines = [
    '| peer | GB/s | min–max GB/s | s per transfer | proxy CPU s/GB | proxy CPU % of a core | peak RSS MB | GB/s ÷ direct |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  const detail = ['| peer | pinning (proxy) | start→ready ms | idle RSS MB | proxy CPU in kernel | proxy minor faults/GB | client CPU s/GB | sink CPU s/GB |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |'];
  for (const peer of PEERS) {
    const s = summary[peer.id];
    if (!s.available) {
      lines.push(`| ${peer.label}: not available (${s.reason.replace(/\|/g, '\\|').replace(/\n/g, ' ')}) |  |  |  |  |  |  |  |`);
      continue;
    }
    const d = peer.id === 'direct';
    lines.push(
      `| ${s.label} | ${fmt(s.gbps, 2)} | ${fmt(s.gbpsMin, 2)}–${fmt(s.gbpsMax, 2)} | ${fmt(s.seconds, 2)} | ${d ? '—' : fmt(s.cpuSPerGB, 2)} | ${d ? '—' : `${fmt(s.cpuShare * 100, 0)}%`} | ${d ? '—' : fmt(s.peakRssMb, 1)} | ${direct.available ? `${fmt(s.gbps / direct.gbps, 2)}×` : '—'} |`,
    );
    detail.push(`| ${s.label} | ${d ? '— (client → sink)' : `core ${o.proxyCpu}`} | ${s.readyMs == null ? '—' : fmt(s.readyMs, 0)} | ${d ? '—' : fmt(s.idleRssMb, 1)} | ${s.sysShareOfCpu == null ? '—' : `${fmt(s.sysShareOfCpu * 100, 0)}%`} | ${s.minfltPerGB == null ? '—' : fmt(s.minfltPerGB, 0)} | ${fmt(s.clientCpuSPerGB, 2)} | ${fmt(s.sinkCpuSPerGB, 2)} |`);
  }
  const capa = summary['capa-runtime'];
  const verdict = capa.available
    ? `Target (issue 4): ≥ ${TCP_TARGET_GBPS} GB/s single stream — ${fmt(capa.gbps, 2)} GB/s, ${capa.gbps >= TCP_TARGET_GBPS ? '**met**' : '**not met**'}` +
      (direct.available && direct.gbps < TCP_TARGET_GBPS ? ` (direct client → sink reaches only ${fmt(direct.gbps, 2)} GB/s here: client and sink share one core)` : '')
    : 'Target: capa-runtime not available';
  const out = [
    `## capa-runtime opaque TCP benchmark — ${env.date}`,
    '',
    `- kernel \`${env.kernel}\`, nproc ${env.nproc}, CPU ${env.cpuModel}, node ${env.node}`,
    `- pinning: ${pinning}`,
    `- load: one connection, ${fmt(gib, 2)} GiB (${o.tcpBytes.toLocaleString('en-US')} bytes) pushed as fast as the socket takes it ` +
      `(one random ${o.tcpChunk / 1024} KiB buffer written repeatedly, with backpressure), clock stops when the sink confirms the last byte; ` +
      `after a ${WARMUP_BYTES / 2 ** 20} MiB warm-up transfer; GB = 10⁹ bytes; medians over ${o.rounds} interleaved round(s)`,
    `- capa-runtime: ${env.capa}`,
    `- ${loadNote(env)}`,
    '',
    ...lines,
    '',
    ...detail,
    '',
    verdict,
    '',
  ];
  if (profile?.summary) {
    out.push(`**Profile** (capa-runtime, \`node --cpu-prof\`; ${profile.file}):`, '', profileMarkdown(profile.summary), '');
  }
  return { markdown: out.join('\n'), json: { suite: 'tcp', environment: env, pinning, options: o, targetGBps: TCP_TARGET_GBPS, rounds, summary, profile } };
}

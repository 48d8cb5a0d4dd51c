// Aggregation (medians over rounds, ratios) and markdown rendering.

export function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function fmt(value, digits = 1) {
  if (value == null || !Number.isFinite(value)) return '—';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function signed(value, digits = 3) {
  if (value == null || !Number.isFinite(value)) return '—';
  return `${value >= 0 ? '+' : ''}${fmt(value, digits)}`;
}

function ratio(a, b) {
  return a != null && b != null && b > 0 ? a / b : null;
}

/**
 * Collapse per-round results into one summary per peer.
 * rounds: [{ round, peers: { [id]: result } }]; peers: [{ id, label, pinning }]
 */
export function summarize(peers, rounds) {
  const summary = {};
  for (const peer of peers) {
    const results = rounds.map((r) => r.peers[peer.id]).filter(Boolean);
    const ok = results.filter((r) => r.available);
    if (ok.length === 0) {
      const reason = results.find((r) => r.reason)?.reason ?? 'not run';
      summary[peer.id] = { id: peer.id, label: peer.label, pinning: peer.pinning, available: false, reason };
      continue;
    }
    // Added latency: paired per round against the direct measurement of the same round.
    const added = (key) =>
      median(
        rounds
          .filter((r) => r.peers[peer.id]?.available && r.peers.direct?.available)
          .map((r) => r.peers[peer.id].paced[key] - r.peers.direct.paced[key]),
      );
    const m = (f) => median(ok.map(f));
    summary[peer.id] = {
      id: peer.id,
      label: peer.label,
      pinning: peer.pinning,
      available: true,
      rounds: ok.length,
      rps: m((r) => r.wrk.rps),
      cpuUsPerReq: m((r) => r.cpuUsPerReq),
      upstreamCpuUsPerReq: m((r) => r.upstreamCpuUsPerReq),
      p50: m((r) => r.paced.p50),
      p99: m((r) => r.paced.p99),
      addedP50: added('p50'),
      addedP99: added('p99'),
      peakRssMb: m((r) => r.memory?.peakMb),
      idleRssMb: m((r) => r.memory?.idleMb),
      readyMs: m((r) => r.readyMs),
      wrkP99: m((r) => r.wrk.latencyMs?.p99),
      non2xx: ok.reduce((a, r) => a + r.wrk.non2xx + (r.paced.non2xx ?? 0), 0),
      socketErrors: ok.reduce((a, r) => a + r.wrk.socketErrorTotal + (r.paced.errors ?? 0), 0),
      flags: [...new Set(ok.flatMap((r) => r.flags ?? []))],
    };
  }
  const nginxCpu = summary.nginx?.available ? summary.nginx.cpuUsPerReq : null;
  const hpRps = summary['http-proxy']?.available ? summary['http-proxy'].rps : null;
  for (const s of Object.values(summary)) {
    if (!s.available) continue;
    s.cpuVsNginx = ratio(s.cpuUsPerReq, nginxCpu);
    s.rpsVsHttpProxy = ratio(s.rps, hpRps);
  }
  return summary;
}

function mdTable(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  const sep = header.map((h, i) => (i === 0 ? '---' : '---:'));
  return [line(header), line(sep), ...rows.map(line)].join('\n');
}

export function renderTables(peers, summary) {
  const main = [];
  const detail = [];
  for (const peer of peers) {
    const s = summary[peer.id];
    if (!s) continue;
    if (!s.available) {
      main.push([`${peer.label}: not available (${s.reason.replace(/\|/g, '\\|').replace(/\n/g, ' ')})`, ...Array(9).fill('')]);
      detail.push([peer.label, peer.pinning, '—', '—', '—', '—', '—', '—']);
      continue;
    }
    const flag = s.non2xx > 0 || s.socketErrors > 0 ? ' ⚠' : '';
    const isDirect = peer.id === 'direct';
    main.push([
      peer.label,
      fmt(s.rps, 0) + flag,
      isDirect ? '—' : fmt(s.cpuUsPerReq, 1),
      fmt(s.p50, 3),
      fmt(s.p99, 3),
      signed(s.addedP50),
      signed(s.addedP99),
      isDirect ? '—' : fmt(s.peakRssMb, 1),
      isDirect ? '—' : s.cpuVsNginx == null ? '—' : `${fmt(s.cpuVsNginx, 2)}×`,
      s.rpsVsHttpProxy == null ? '—' : `${fmt(s.rpsVsHttpProxy, 2)}×`,
    ]);
    detail.push([
      peer.label,
      peer.pinning,
      isDirect ? '—' : fmt(s.readyMs, 0),
      isDirect ? '—' : fmt(s.idleRssMb, 1),
      fmt(s.upstreamCpuUsPerReq, 1),
      fmt(s.wrkP99, 3),
      String(s.non2xx),
      String(s.socketErrors),
    ]);
  }
  return {
    main: mdTable(
      ['peer', 'req/s', 'µs CPU/req', 'p50 ms', 'p99 ms', 'added p50', 'added p99', 'peak RSS MB', 'CPU/req ÷ nginx', 'req/s ÷ http-proxy'],
      main,
    ),
    detail: mdTable(
      ['peer', 'pinning (proxy)', 'start→ready ms', 'idle RSS MB', 'upstream µs CPU/req', 'wrk p99 ms @c32', 'non-2xx', 'socket errors'],
      detail,
    ),
  };
}

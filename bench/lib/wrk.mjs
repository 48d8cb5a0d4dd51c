// Runs wrk (pinned to the load-generator core) and parses its report.
import { run } from './procs.mjs';

const TIME_UNITS = { us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "359.58us" -> 0.35958 (ms) */
function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text);
  return m ? Number(m[1]) * TIME_UNITS[m[2]] : null;
}

export function parseWrk(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : null;
  };
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = sock
    ? { connect: Number(sock[1]), read: Number(sock[2]), write: Number(sock[3]), timeout: Number(sock[4]) }
    : { connect: 0, read: 0, write: 0, timeout: 0 };
  const latency = {};
  const dist = /Latency Distribution\n([\s\S]*?)\n\s*\d+ requests in/.exec(out);
  if (dist) {
    for (const line of dist[1].split('\n')) {
      const m = /^\s*([\d.]+)%\s+(\S+)/.exec(line);
      if (m) latency[`p${m[1]}`] = toMs(m[2]);
    }
  }
  const reqs = /(\d+) requests in ([\d.]+)(us|ms|s|m|h)/.exec(out);
  return {
    requests: reqs ? Number(reqs[1]) : null,
    durationMs: reqs ? Number(reqs[2]) * TIME_UNITS[reqs[3]] : null,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) ?? 0,
    socketErrors,
    socketErrorTotal: socketErrors.connect + socketErrors.read + socketErrors.write + socketErrors.timeout,
    latencyMs: latency,
  };
}

/**
 * wrk -t<threads> -c<connections> -d<seconds>s --latency <url>, pinned to `cpus`.
 * Rejects when wrk fails or its output cannot be parsed.
 */
export async function runWrk(url, { seconds, connections = 32, threads = 1, cpus = '1' }) {
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '--latency', url];
  const res = await run('wrk', args, { cpus, timeoutMs: (seconds + 30) * 1000 });
  if (res.code !== 0) throw new Error(`wrk exited ${res.code ?? res.signal}: ${res.stderr.trim() || res.stdout.trim()}`);
  const parsed = parseWrk(res.stdout);
  if (parsed.rps == null || parsed.requests == null) throw new Error(`cannot parse wrk output:\n${res.stdout}`);
  return { ...parsed, raw: res.stdout };
}

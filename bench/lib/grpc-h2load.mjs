// The grpc suite's verdict-row load generator: h2load (nghttp2's C client — no GC, a few µs of
// CPU per call, so the rows show the proxy's limit, not the client's). `sessions` h2c connections
// × `streams` concurrent streams each, the same gRPC-framed request every call, for `seconds`.
// h2load reads HTTP statuses only, never gRPC trailers: the suite checks grpc-status separately
// (one call through bench/lib/h2grpc.mjs first, and the proxy's own istio_requests_total after).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { run } from './procs.mjs';
import { summarize } from './paced.mjs';

export const H2LOAD = '/usr/bin/h2load';

/**
 * One h2load run: closed loop, or paced at `rate` calls/s in all (h2load's --rps, split evenly
 * over the sessions; a call waits for a free stream, so at most sessions × streams are in flight). Returns the grpc-load.mjs shape: { calls, errors, mismatches,
 * errorCodes, firstError, seconds, cps, p50, p90, p99, p999, max, mean, clientCpuUsPerCall }.
 */
export async function h2loadUnary({ target, path, frame, sessions, streams, seconds, rate = 0, cpus = null, log = true }) {
  const dir = mkdtempSync(join(os.tmpdir(), 'capa-grpc-h2load-'));
  try {
    const body = join(dir, 'body.bin');
    const logFile = join(dir, 'h2load.log');
    writeFileSync(body, frame);
    const args = ['-c', String(sessions), '-m', String(streams), '-D', String(seconds), '-d', body];
    if (rate > 0) args.push('--rps', String(Math.max(1, Math.round(rate / sessions))));
    args.push('-H', 'content-type: application/grpc', '-H', 'te: trailers');
    if (log) args.push('--log-file', logFile);
    args.push(`http://${target}${path}`);
    // bash's `times` prints the children's user/system CPU: h2load's own cost per call.
    const res = await run('bash', ['-c', `${H2LOAD} "$@"; rc=$?; times; exit $rc`, 'h2load', ...args], { cpus, timeoutMs: (seconds + 30) * 1000 });
    if (res.code !== 0) throw new Error(`h2load failed (${res.code ?? res.signal}): ${(res.stderr || res.stdout).trim().slice(-400)}`);
    const samples = [];
    let errors = 0;
    const errorCodes = {};
    if (log) {
      for (const line of readFileSync(logFile, 'utf8').split('\n')) {
        const [, status, us] = line.split('\t');
        if (us === undefined) continue;
        if (status === '200') samples.push(Number(us) / 1000);
        else {
          errors++;
          errorCodes[`http ${status}`] = (errorCodes[`http ${status}`] ?? 0) + 1;
        }
      }
    }
    const out = res.stdout;
    const failed = Number(/(\d+) failed/.exec(out)?.[1] ?? 0);
    const errored = Number(/(\d+) errored/.exec(out)?.[1] ?? 0);
    if (errored) errorCodes.transport = errored;
    const times = out.trim().split('\n').slice(-1)[0]?.match(/(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s/);
    const cpuS = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : null;
    const calls = samples.length;
    return {
      calls,
      errors: Math.max(errors, failed) + errored,
      mismatches: 0,
      errorCodes,
      firstError: errors + errored ? JSON.stringify(errorCodes) : null,
      seconds,
      cps: calls / seconds,
      ...summarize(samples),
      clientCpuUsPerCall: cpuS != null && calls ? (cpuS * 1e6) / calls : null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// Start capa-runtime with one of the bench configs (bench/grpc-proxy.yaml, bench/tcp-proxy.yaml,
// bench/runtime.yaml) for the grpc, tcp and runtime suites. Ports come from the environment like
// bench/proxy.yaml's. It starts as users start it, through bin/capa-runtime (which picks V8's GC
// threads for the CPUs it is pinned to); CAPA_MAIN runs another build's main.js with node directly
// instead (no launcher: pass CAPA_NODE_ARGS=--single-threaded-gc to match it on one pinned core).
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePorts, start, stop, waitReady } from './procs.mjs';

const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH_DIR);

export function capaMain() {
  const main = process.env.CAPA_MAIN || 'dist/main.js';
  return isAbsolute(main) ? main : join(ROOT, main);
}

/**
 * The command that starts capa-runtime with `args`: bin/capa-runtime, or node + CAPA_MAIN.
 * `nodeArgs` (--cpu-prof ...) and $CAPA_NODE_ARGS reach node either way.
 */
export function capaCommand(args, nodeArgs = []) {
  const extra = [...(process.env.CAPA_NODE_ARGS ?? '').split(' '), ...nodeArgs].filter(Boolean);
  if (process.env.CAPA_MAIN) return { cmd: process.execPath, args: [...extra, capaMain(), ...args], env: {}, descr: `node ${capaMain()} ${args.join(' ')}` };
  return { cmd: join(ROOT, 'bin/capa-runtime'), args, env: { CAPA_NODE_ARGS: extra.join(' ') }, descr: `bin/capa-runtime ${args.join(' ')}` };
}

/**
 * Start `bin/capa-runtime --config bench/<config>` (see capaCommand) pinned to `cpus`. `portNames`
 * are extra env vars that get a free port each (LISTEN_PORT and the sidecar's own ports always do).
 * Resolves { rec, readyMs, env } or { reason } (nothing left running then).
 */
export async function startCapaConfig({ name, config, cpus, env = {}, portNames = [], nodeArgs = [], readyTimeoutMs = 5000 }) {
  const main = capaMain();
  if (!existsSync(main)) return { reason: `${main} missing — run npm run build` };
  const cfg = join(BENCH_DIR, config);
  if (!existsSync(cfg)) return { reason: `bench/${config} missing` };
  const names = ['LISTEN_PORT', 'ADMIN_PORT', 'METRICS_PORT', 'PROM_PORT', 'READY_PORT', 'API_PORT', 'GRPC_PORT', ...portNames];
  const ports = await freePorts(names.length);
  const fullEnv = { UPSTREAM_HOST: '127.0.0.1', ...env };
  names.forEach((n, i) => (fullEnv[n] = String(ports[i])));
  const c = capaCommand(['--config', cfg], nodeArgs);
  const rec = start(name, c.cmd, c.args, { cpus, env: { ...fullEnv, ...c.env }, cwd: ROOT });
  const ready = await waitReady(rec, `http://127.0.0.1:${fullEnv.ADMIN_PORT}/ready`, readyTimeoutMs);
  if (!ready.ok) {
    await stop(rec);
    return { reason: ready.reason };
  }
  return { rec, readyMs: ready.ms, env: fullEnv };
}

/** Wait until a child we started prints `marker` (e.g. "listening"), exits, or timeoutMs passes. */
export async function waitOutput(rec, marker, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (rec.output.includes(marker)) return { ok: true };
    if (rec.exited) return { ok: false, reason: `exited (${rec.exited.code ?? rec.exited.signal}): ${rec.output.trim().slice(-300)}` };
    await new Promise((r) => setTimeout(r, 10));
  }
  return { ok: false, reason: `no "${marker}" within ${timeoutMs} ms: ${rec.output.trim().slice(-300)}` };
}

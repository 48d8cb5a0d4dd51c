// Start capa-runtime with one of the bench configs (bench/grpc-proxy.yaml, bench/tcp-proxy.yaml)
// for the grpc and tcp suites. Ports come from the environment like bench/proxy.yaml's; the
// binary is dist/main.js unless CAPA_MAIN points at another build's main.js.
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
 * Start `node <main> --config bench/<config>` pinned to `cpus`. `portNames` are extra env vars
 * that get a free port each (LISTEN_PORT and the sidecar's own ports always do).
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
  const rec = start(name, process.execPath, [...nodeArgs, main, '--config', cfg], { cpus, env: fullEnv, cwd: ROOT });
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

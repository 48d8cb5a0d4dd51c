// Machine description shared by the grpc and tcp suites' reports.
import { readFileSync } from 'node:fs';
import os from 'node:os';

export function sysinfo(extra = {}) {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m);
    if (m) cpuModel = m[1].trim();
  } catch {
    /* keep os.cpus() */
  }
  return {
    date: new Date().toISOString(),
    kernel: os.release(),
    // os.cpus(), not availableParallelism(): the orchestrator may already be pinned to one core.
    nproc: os.cpus().length,
    cpuModel,
    node: process.version,
    loadavgBefore: os.loadavg()[0],
    ...extra,
  };
}

export function loadNote(env) {
  const worst = Math.max(env.loadavgBefore, env.loadavgAfter ?? 0);
  return (
    `1-min load average before/after: ${env.loadavgBefore.toFixed(2)} / ${(env.loadavgAfter ?? NaN).toFixed(2)}` +
    (worst > 0.5 * env.nproc ? ' — other work was running on the machine; numbers are noisy' : '')
  );
}

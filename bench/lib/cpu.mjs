// CPU time and memory of a process tree, read from /proc.
//
// CPU: utime+stime from /proc/<pid>/stat (covers all threads of the process, including exited
// ones) summed over the root pid and all its live descendants (found through the ppid field of
// every /proc/<n>/stat). Units: clock ticks, converted with CLK_TCK (usually 100 Hz, i.e. 10 ms
// resolution — fine for multi-second runs at tens of thousands of requests).
import { readdirSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}
export const CLK_TCK = clkTck;

/** Parse /proc/<pid>/stat; null if the process is gone. */
function readStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm (field 2) may contain spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] = state (field 3), rest[1] = ppid (4), rest[11] = utime (14), rest[12] = stime (15)
  return { pid, ppid: Number(rest[1]), utime: Number(rest[11]), stime: Number(rest[12]) };
}

/** Pids of root and all its live descendants. */
export function processTree(rootPid) {
  const byParent = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(name);
    if (!st) continue;
    if (!byParent.has(st.ppid)) byParent.set(st.ppid, []);
    byParent.get(st.ppid).push(Number(name));
  }
  const out = [];
  const queue = [rootPid];
  while (queue.length) {
    const pid = queue.shift();
    if (readStat(pid) == null) continue;
    out.push(pid);
    for (const child of byParent.get(pid) ?? []) queue.push(child);
  }
  return out;
}

/** CPU seconds (user+system) of the tree rooted at rootPid, with the per-process breakdown. */
export function treeCpu(rootPid) {
  const procs = [];
  let ticks = 0;
  for (const pid of processTree(rootPid)) {
    const st = readStat(pid);
    if (!st) continue;
    const t = st.utime + st.stime;
    ticks += t;
    procs.push({ pid, utime: st.utime, stime: st.stime });
  }
  return { seconds: ticks / CLK_TCK, ticks, procs };
}

/** Difference of two treeCpu() snapshots, counting only pids present in `after`. */
export function cpuDelta(before, after) {
  const prev = new Map(before.procs.map((p) => [p.pid, p.utime + p.stime]));
  let ticks = 0;
  let user = 0;
  let system = 0;
  for (const p of after.procs) {
    const was = prev.get(p.pid) ?? 0;
    ticks += p.utime + p.stime - was;
    const pb = before.procs.find((x) => x.pid === p.pid);
    user += p.utime - (pb?.utime ?? 0);
    system += p.stime - (pb?.stime ?? 0);
  }
  return { seconds: ticks / CLK_TCK, userSeconds: user / CLK_TCK, systemSeconds: system / CLK_TCK };
}

function statusKb(pid, field) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Memory of the tree: sums of VmRSS and VmHWM (peak RSS) in MB, plus per-process values. */
export function treeMemory(rootPid) {
  const procs = processTree(rootPid).map((pid) => ({
    pid,
    rssKb: statusKb(pid, 'VmRSS'),
    hwmKb: statusKb(pid, 'VmHWM'),
  }));
  const sum = (k) => procs.reduce((a, p) => a + p[k], 0) / 1024;
  return { rssMb: sum('rssKb'), hwmMb: sum('hwmKb'), procs };
}

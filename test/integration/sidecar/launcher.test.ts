/**
 * bin/capa-runtime, the command users start: it picks V8's GC threads for the CPUs the process may
 * use (single-threaded GC on one CPU: affinity or cgroup quota) and execs node on dist/main.js.
 * Real processes, real CPU affinity (taskset) and real cgroups (the test makes its own and removes
 * it); what a user sees is checked: the sidecar's /server_info node flags and its ready log line.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnCommand, waitReady, writeTempConfig, type Spawned } from '../../helpers/sidecar.js';
import { freePort, request } from '../../helpers/http.js';

const LAUNCHER = new URL('../../../bin/capa-runtime', import.meta.url).pathname;
const SINGLE = '--single-threaded-gc';

async function config(): Promise<{ file: string; admin: number }> {
  const [admin, prom, metrics, ready, api, grpc] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
  const file = writeTempConfig(`
sidecar: { port: ${api}, grpcPort: ${grpc}, adminPort: ${admin}, prometheusPort: ${prom}, metricsPort: ${metrics}, readinessPort: ${ready} }
logLevel: info
drainTime: 1s
`);
  return { file, admin };
}

interface Started {
  readonly nodeArgs: string[];
  readonly readyLine: { gc?: string };
  readonly proc: Spawned;
}

/** Starts `[...wrapper, bin/capa-runtime, --config, file]`, waits for ready, reads /server_info, stops it by PID. */
async function launch(wrapper: string[], env: Record<string, string> = {}): Promise<Started> {
  const { file, admin } = await config();
  const [cmd, ...pre] = wrapper.length > 0 ? wrapper : [LAUNCHER];
  const args = wrapper.length > 0 ? [...pre, LAUNCHER, '--config', file] : ['--config', file];
  const proc = spawnCommand(cmd!, args, env);
  try {
    await Promise.race([waitReady(admin, 15_000), proc.exited.then((c) => Promise.reject(new Error(`exited ${c}: ${proc.stderr.join('')}`)))]);
    const info = JSON.parse((await request(admin, { path: '/server_info' })).body) as { command_line_options: { node_args: string[] } };
    // exec: the PID we started is node running dist/main.js, not a shell waiting for it.
    expect(readFileSync(`/proc/${proc.child.pid}/cmdline`, 'utf8')).toContain('dist/main.js');
    proc.kill('SIGTERM');
    expect(await proc.exited).toBe(0);
    const out = (proc.stdout.join('') + proc.stderr.join('')).split('\n');
    const line = out.find((l) => l.includes('"capa-runtime ready"'));
    return { nodeArgs: info.command_line_options.node_args, readyLine: line ? (JSON.parse(line) as { gc?: string }) : {}, proc };
  } finally {
    proc.kill();
  }
}

// --- a CPU quota of the test's own making (cgroup v1 `cpu` controller or cgroup v2 `cpu.max`)

const made: string[] = [];

function cpuCgroup(cpus: number): string {
  const name = `capa-test-${process.pid}-${made.length}`;
  const period = 100_000;
  const quota = Math.round(cpus * period);
  let dir: string;
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    const control = '/sys/fs/cgroup/cgroup.subtree_control';
    if (!readFileSync(control, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(control, '+cpu');
    dir = `/sys/fs/cgroup/${name}`;
    mkdirSync(dir);
    made.push(dir);
    writeFileSync(`${dir}/cpu.max`, `${quota} ${period}`);
  } else {
    dir = `/sys/fs/cgroup/cpu/${name}`;
    mkdirSync(dir);
    made.push(dir);
    writeFileSync(`${dir}/cpu.cfs_period_us`, String(period));
    writeFileSync(`${dir}/cpu.cfs_quota_us`, String(quota));
  }
  return dir;
}

/** A wrapper that moves itself into `dir` and then execs the launcher. */
function inCgroup(dir: string): string[] {
  return ['sh', '-c', `echo $$ > ${dir}/cgroup.procs && exec "$@"`, 'in-cgroup'];
}

afterAll(() => {
  for (const d of made) rmdirSync(d); // the processes in them have exited
});

describe('bin/capa-runtime', () => {
  it('runs the sidecar with single-threaded GC when pinned to one CPU, and says so', async () => {
    const s = await launch(['taskset', '-c', '0']);
    expect(s.nodeArgs).toContain(SINGLE);
    expect(s.readyLine.gc).toBe('single-threaded');
  });

  it('keeps V8 parallel GC with two CPUs', async () => {
    expect(availableParallelism()).toBeGreaterThanOrEqual(2); // this suite runs on a 2-core machine
    const s = await launch(['taskset', '-c', '0,1']);
    expect(s.nodeArgs).not.toContain(SINGLE);
    expect(s.readyLine.gc).toBe('parallel');
  });

  it('counts a cgroup CPU quota, rounded up (1 CPU → single-threaded, 1.5 → parallel)', async () => {
    expect((await launch(inCgroup(cpuCgroup(1)))).nodeArgs).toContain(SINGLE);
    expect((await launch(inCgroup(cpuCgroup(1.5)))).nodeArgs).not.toContain(SINGLE);
  });

  it('CAPA_GC_THREADS overrides the choice; CAPA_NODE_ARGS adds node flags', async () => {
    const single = await launch(['taskset', '-c', '0,1'], { CAPA_GC_THREADS: 'single', CAPA_NODE_ARGS: '--max-old-space-size=300 --stack-size=900' });
    expect(single.nodeArgs).toEqual([SINGLE, '--max-old-space-size=300', '--stack-size=900']);
    const parallel = await launch(['taskset', '-c', '0'], { CAPA_GC_THREADS: 'parallel' });
    expect(parallel.nodeArgs).not.toContain(SINGLE);
  });

  it('refuses an unknown CAPA_GC_THREADS with exit code 2, naming the values', async () => {
    const p = spawnCommand(LAUNCHER, ['--version'], { CAPA_GC_THREADS: 'two' });
    expect(await p.exited).toBe(2);
    expect(p.stderr.join('')).toContain('CAPA_GC_THREADS must be auto, single or parallel (got "two")');
  });
});

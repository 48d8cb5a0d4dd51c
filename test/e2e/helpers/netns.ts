/**
 * Network namespaces for e2e tests: two namespaces (an "app" pod and a "server" host) joined by a
 * veth pair with private 10.250.X.0/24 addresses chosen per run, processes run inside them with
 * `ip netns exec`, and cleanup that never depends on a test passing.
 *
 * Only namespaces whose names start with NETNS_PREFIXES are ever deleted, and a leftover is only
 * removed when the run that made it is gone (its owner file names a PID that no longer runs node).
 * The host's own network (interfaces, iptables) is never touched: the veth ends are created
 * directly inside the namespaces.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NETNS_PREFIXES = ['capa-app-', 'capa-srv-'] as const;
/** Which process made which namespace, so a later run removes only the leftovers of dead runs. */
const OWNERS = join(tmpdir(), 'capa-e2e-netns-owners');

export async function sh(cmd: string, args: readonly string[], timeoutMs = 20_000): Promise<string> {
  try {
    const r = await run(cmd, [...args], { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024 });
    return r.stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string; stdout?: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.message}${err.stderr ? `\nstderr: ${err.stderr}` : ''}`, { cause: e });
  }
}

export function inNs(ns: string, cmd: string, args: readonly string[], timeoutMs?: number): Promise<string> {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], timeoutMs);
}

export interface Topology {
  /** The "pod": the app, the sidecar and the capture rules. */
  readonly app: string;
  /** The "server" host the app calls and that calls the app. */
  readonly srv: string;
  readonly appIp: string;
  readonly srvIp: string;
  /** A second address of the server, inside `excludedCidr`. */
  readonly srvIpExcluded: string;
  /** 10.250.X.128/25: holds srvIpExcluded, not srvIp. */
  readonly excludedCidr: string;
}

function isOurs(name: string): boolean {
  return NETNS_PREFIXES.some((p) => name.startsWith(p));
}

function ownerAlive(name: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(join(OWNERS, name), 'utf8').trim());
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return pid === process.pid;
  try {
    // A live PID that is still a node process: a concurrent run of this suite; leave it alone.
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith('node');
  } catch {
    return false;
  }
}

async function namespaces(): Promise<string[]> {
  const out = await sh('ip', ['netns', 'list']);
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** Kill the processes left inside a namespace of ours (all started by this suite), then delete it. */
export async function deleteNamespace(name: string): Promise<void> {
  if (!isOurs(name)) throw new Error(`refusing to delete namespace ${name}: not made by this suite`);
  const pids = (await sh('ip', ['netns', 'pids', name]).catch(() => '')).split(/\s+/).filter((p) => /^\d+$/.test(p));
  for (const pid of pids) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  await sh('ip', ['netns', 'del', name]);
  rmSync(join(OWNERS, name), { force: true });
}

/** Namespaces of ours left by a crashed earlier run (owner gone). Returns what was removed. */
export async function removeLeftovers(): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await namespaces()) {
    if (!isOurs(name) || ownerAlive(name)) continue;
    await deleteNamespace(name);
    removed.push(name);
  }
  // Owner files whose namespace no longer exists.
  try {
    const live = new Set(await namespaces());
    for (const f of readdirSync(OWNERS)) if (!live.has(f)) rmSync(join(OWNERS, f), { force: true });
  } catch {
    /* no owners directory yet */
  }
  return removed;
}

/**
 * Create both namespaces and the veth pair. `created` receives each namespace as soon as it
 * exists, so the caller can delete it even if a later step fails.
 */
export async function createTopology(created: string[]): Promise<Topology> {
  const tag = randomBytes(3).toString('hex');
  const x = randomInt(0, 256);
  const t: Topology = {
    app: `capa-app-${tag}`,
    srv: `capa-srv-${tag}`,
    appIp: `10.250.${x}.1`,
    srvIp: `10.250.${x}.2`,
    srvIpExcluded: `10.250.${x}.130`,
    excludedCidr: `10.250.${x}.128/25`,
  };
  mkdirSync(OWNERS, { recursive: true });
  for (const ns of [t.app, t.srv]) {
    // Written first, so a concurrent run never mistakes this namespace for a dead run's leftover.
    writeFileSync(join(OWNERS, ns), String(process.pid));
    try {
      await sh('ip', ['netns', 'add', ns]);
    } catch (e) {
      rmSync(join(OWNERS, ns), { force: true });
      throw e;
    }
    created.push(ns);
    await inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  }
  // Made inside the namespaces directly: the host never has these links, not even for a moment.
  const vApp = `cva-${tag}`;
  const vSrv = `cvs-${tag}`;
  await sh('ip', ['link', 'add', vApp, 'netns', t.app, 'type', 'veth', 'peer', 'name', vSrv, 'netns', t.srv]);
  await inNs(t.app, 'ip', ['addr', 'add', `${t.appIp}/24`, 'dev', vApp]);
  await inNs(t.srv, 'ip', ['addr', 'add', `${t.srvIp}/24`, 'dev', vSrv]);
  await inNs(t.srv, 'ip', ['addr', 'add', `${t.srvIpExcluded}/24`, 'dev', vSrv]);
  await inNs(t.app, 'ip', ['link', 'set', vApp, 'up']);
  await inNs(t.srv, 'ip', ['link', 'set', vSrv, 'up']);
  return t;
}

/** A long-running process inside a namespace; stdout is split into lines as they arrive. */
export interface NsProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly lines: string[];
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<number | null>;
  /** Resolves with the first stdout line matching `pred` (also one already seen). */
  waitLine(pred: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; only this PID. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * `ip netns exec NS argv...`: ip and setpriv exec, so the PID is the final program's.
 */
export function spawnInNs(ns: string, argv: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): NsProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...argv], { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`cannot spawn ip netns exec ${ns} ${argv.join(' ')}`);
  const pid = child.pid;
  let out = '';
  let err = '';
  let partial = '';
  const lines: string[] = [];
  const waiters: { pred: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    const s = d.toString();
    out += s;
    partial += s;
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, i);
      partial = partial.slice(i + 1);
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
  const p: NsProcess = {
    child,
    pid,
    lines,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitLine(pred, timeoutMs = 15_000) {
      const seen = lines.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (l: string) => (clearTimeout(t), resolve(l)) };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(new Error(`no expected line from ${argv.join(' ')} within ${timeoutMs}ms\nstdout: ${out}\nstderr: ${err}`));
        }, timeoutMs);
        waiters.push(w);
        void exited.then((code) => {
          if (!waiters.includes(w)) return;
          waiters.splice(waiters.indexOf(w), 1);
          clearTimeout(t);
          reject(new Error(`${argv.join(' ')} exited (${code}) before the expected line\nstdout: ${out}\nstderr: ${err}`));
        });
      });
    },
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        return;
      }
      const t = setTimeout(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  return p;
}

// Process bookkeeping for the benchmark: spawning (optionally pinned with taskset), readiness
// polling, free ports, and cleanup of everything this harness started (and nothing else).
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** Children we spawned, by pid. Each runs in its own process group (detached), so killing
 * -pid reaches its own descendants (nginx workers, cluster workers) and nothing else. */
const children = new Map();
const tempDirs = new Set();
/** Set once cleanup has begun: no new processes may be started after that. */
let stopping = false;

/** Prefix for a command pinned to `cpus` ("0", "1", "0-1"), or none when cpus is null. */
export function pinned(cpus, cmd, args) {
  return cpus == null ? [cmd, args] : ['taskset', ['-c', String(cpus), cmd, ...args]];
}

/**
 * Spawn a long-running child. taskset execs the command, so the returned pid is the
 * command's own pid. stdout/stderr are kept (bounded) for error messages.
 */
export function start(name, cmd, args, { cpus = null, env = {}, cwd } = {}) {
  if (stopping) throw new Error('benchmark is stopping');
  const [c, a] = pinned(cpus, cmd, args);
  const startedAt = process.hrtime.bigint();
  const child = spawn(c, a, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const rec = { name, child, pid: child.pid, startedAt, output: '', exited: null };
  const keep = (chunk) => {
    rec.output = (rec.output + chunk.toString()).slice(-8192);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  rec.exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      rec.exited = { code, signal };
      children.delete(rec.pid);
      resolve(rec.exited);
    });
    child.on('error', (err) => {
      rec.exited = { code: null, signal: null, error: err.message };
      rec.output += `\nspawn error: ${err.message}`;
      children.delete(rec.pid);
      resolve(rec.exited);
    });
  });
  if (child.pid != null) children.set(child.pid, rec);
  return rec;
}

/** Run a command to completion, capturing stdout/stderr; killed after timeoutMs. */
export function run(cmd, args, { cpus = null, timeoutMs = 120_000, env = {} } = {}) {
  if (stopping) return Promise.reject(new Error('benchmark is stopping'));
  const [c, a] = pinned(cpus, cmd, args);
  return new Promise((resolve, reject) => {
    const child = spawn(c, a, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (child.pid != null) children.set(child.pid, { name: cmd, child, pid: child.pid });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => killGroup(child.pid, 'SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      children.delete(child.pid);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      children.delete(child.pid);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function killGroup(pid, signal) {
  if (pid == null) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Stop one child we started: SIGTERM to its group, SIGKILL after graceMs. */
export async function stop(rec, graceMs = 3000) {
  if (!rec || rec.exited || rec.pid == null) return;
  killGroup(rec.pid, 'SIGTERM');
  const done = await Promise.race([rec.exitPromise, sleep(graceMs).then(() => null)]);
  if (!done) {
    killGroup(rec.pid, 'SIGKILL');
    await Promise.race([rec.exitPromise, sleep(1000)]);
  }
  // Reap any straggling group members (e.g. cluster workers orphaned by a crashed primary).
  killGroup(rec.pid, 'SIGKILL');
}

export function makeTempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir) {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

/** Synchronous last-resort cleanup: safe inside process.on('exit'). */
export function cleanupSync() {
  stopping = true;
  for (const rec of children.values()) killGroup(rec.pid, 'SIGKILL');
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}

/** Graceful cleanup: SIGTERM everything, wait briefly, then cleanupSync(). */
export async function cleanup() {
  stopping = true;
  const recs = [...children.values()];
  for (const rec of recs) killGroup(rec.pid, 'SIGTERM');
  await Promise.race([Promise.all(recs.map((r) => r.exitPromise).filter(Boolean)), sleep(2000)]);
  cleanupSync();
}

let handlersInstalled = false;
export function installCleanupHandlers() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', cleanupSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      console.error(`\n${sig}: stopping benchmark processes...`);
      cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
}

/** Distinct free TCP ports on 127.0.0.1 (held open together so they differ). */
export async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const srv = net.createServer();
      await new Promise((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(0, '127.0.0.1', resolve);
      });
      servers.push(srv);
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/** One GET; resolves { status, body } or rejects. Uses a fresh connection. */
export function httpGet(url, timeoutMs = 1000) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * Poll `url` until it answers 200, the process exits, or timeoutMs passes.
 * Resolves { ok, ms, reason } where ms is measured from the process's spawn.
 */
export async function waitReady(rec, url, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (rec.exited) {
      const tail = rec.output.trim().split('\n').slice(-3).join(' | ');
      return { ok: false, reason: `exited (${rec.exited.code ?? rec.exited.signal})${tail ? `: ${tail}` : ''}` };
    }
    try {
      const res = await httpGet(url, 500);
      if (res.status === 200) {
        return { ok: true, ms: Number(process.hrtime.bigint() - rec.startedAt) / 1e6 };
      }
      last = `${url} answered ${res.status}`;
    } catch (err) {
      last = `${url}: ${err.code ?? err.message}`;
    }
    await sleep(10);
  }
  return { ok: false, reason: `not ready within ${timeoutMs} ms (${last})` };
}

/** Pin this orchestrator (all its threads) to the given cpus, best effort. */
export function pinSelf(cpus) {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(cpus), String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

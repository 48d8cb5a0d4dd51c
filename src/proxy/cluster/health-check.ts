/**
 * Active health checking (Envoy HealthCheck, HTTP and TCP flavours).
 *
 * One session per host. The first check runs at start() after a small random delay (so the
 * hosts of a cluster are not all probed in the same tick); each next check runs `intervalMs`
 * after the previous one finished, as in Envoy. A check that does not finish within
 * `timeoutMs` fails (and marks the host `/active_hc_timeout` when it makes it unhealthy).
 *
 * - HTTP: `GET <path>` with Host = spec.http.host or the cluster name and user-agent
 *   `capa-runtime-health-checker`, on a fresh connection (`agent: false`). Passing statuses are
 *   spec.http.expectedStatuses as [start, end) ranges; default 200 only. The body is drained.
 * - TCP (spec.http null): connect, then close.
 *
 * Transitions: `unhealthyThreshold` consecutive failures take a healthy host out,
 * `healthyThreshold` consecutive passes bring it back. Every failure kind counts against the
 * threshold. (Envoy marks a host unhealthy at once on an unexpected HTTP status and applies the
 * threshold to network failures only; the threshold-for-all rule is the documented choice here.)
 * A new host counts as healthy until it fails (see host.ts). On a transition the checker sets
 * `host.healthy`, calls `hosts.refresh()`, then `onChange(host, healthy)`, and logs.
 *
 * Membership follows the HostSet: whenever its version moved, the next timer that fires (a
 * session's, or a cluster-wide watch timer every intervalMs, which also covers a set that
 * started empty) adds sessions for new hosts and drops those of removed ones (Host objects survive EDS/DNS
 * updates via hostsFromAssignment, so their counters do too). Timers are unref'd; stop()
 * clears them and aborts checks in flight.
 */
import http from 'node:http';
import net from 'node:net';
import type { HealthCheckSpec } from '../../config/snapshot.js';
import { HEALTH_FLAG_ACTIVE_HC_TIMEOUT, HEALTH_FLAG_FAILED_ACTIVE_HC, type Host, type HostSet } from './host.js';

export const HEALTH_CHECK_USER_AGENT = 'capa-runtime-health-checker';
/** The first check of a host is delayed by a random 0..this many ms (capped at intervalMs / 10). */
const MAX_INITIAL_JITTER_MS = 100;

export interface HealthCheckerOptions {
  clusterName: string;
  onChange: (host: Host, healthy: boolean) => void;
  logger?: { info(obj: object, msg: string): void };
}

/** Envoy cluster.<name>.health_check.* counters. */
export interface HealthCheckStats {
  attempt: number;
  success: number;
  failure: number;
  /** Connect errors and resets (also counted in failure). */
  networkFailure: number;
  /** Checks that timed out (also counted in failure). */
  timeout: number;
}

/** Outcome of one check: pass, unexpected status, network failure, timeout. */
type Result = 0 | 1 | 2 | 3;
const Result = { Pass: 0, Fail: 1, NetworkFail: 2, Timeout: 3 } as const;

interface Session {
  readonly host: Host;
  failures: number;
  successes: number;
  timer: NodeJS.Timeout | null;
  /** Aborts the check in flight. */
  cancel: (() => void) | null;
}

// === impl HealthChecker ===

export class HealthChecker {
  readonly stats: HealthCheckStats = { attempt: 0, success: 0, failure: 0, networkFailure: 0, timeout: 0 };
  private readonly spec: HealthCheckSpec;
  private readonly hosts: HostSet;
  private readonly opts: HealthCheckerOptions;
  private readonly hostHeader: string;
  private readonly ranges: readonly (readonly [number, number])[];
  private readonly unhealthyThreshold: number;
  private readonly healthyThreshold: number;
  private readonly sessions = new Map<Host, Session>();
  private running = false;
  private syncedVersion = -1;
  private watch: NodeJS.Timeout | null = null;

  constructor(spec: HealthCheckSpec, hosts: HostSet, opts: HealthCheckerOptions) {
    this.spec = spec;
    this.hosts = hosts;
    this.opts = opts;
    this.hostHeader = spec.http?.host || opts.clusterName;
    const ranges = spec.http?.expectedStatuses ?? [];
    this.ranges = ranges.length > 0 ? ranges : [[200, 201]];
    this.unhealthyThreshold = Math.max(1, Math.floor(spec.unhealthyThreshold) || 1);
    this.healthyThreshold = Math.max(1, Math.floor(spec.healthyThreshold) || 1);
  }

  /** True between start() and stop(). */
  get isRunning(): boolean {
    return this.running;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.sync();
    this.watch = setInterval(this.onWatch, Math.max(1, this.spec.intervalMs));
    this.watch.unref();
  }

  stop(): void {
    this.running = false;
    if (this.watch) clearInterval(this.watch);
    this.watch = null;
    for (const s of this.sessions.values()) this.dropSession(s);
    this.sessions.clear();
    this.syncedVersion = -1;
  }

  /** Align sessions with hosts.all (runs by itself when the HostSet's version moved). */
  sync(): void {
    if (!this.running) return;
    this.syncedVersion = this.hosts.version;
    const current = new Set(this.hosts.all);
    for (const [host, s] of this.sessions) {
      if (!current.has(host)) {
        this.dropSession(s);
        this.sessions.delete(host);
      }
    }
    const jitterMax = Math.min(MAX_INITIAL_JITTER_MS, this.spec.intervalMs / 10);
    for (const host of current) {
      if (this.sessions.has(host)) continue;
      const s: Session = { host, failures: 0, successes: 0, timer: null, cancel: null };
      this.sessions.set(host, s);
      this.schedule(s, Math.random() * jitterMax);
    }
  }

  private dropSession(s: Session): void {
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    const cancel = s.cancel;
    s.cancel = null;
    if (cancel) cancel();
  }

  private schedule(s: Session, delayMs: number): void {
    s.timer = setTimeout(this.onTimer, delayMs, s);
    s.timer.unref();
  }

  private readonly onWatch = (): void => {
    if (this.running && this.hosts.version !== this.syncedVersion) this.sync();
  };

  private readonly onTimer = (s: Session): void => {
    s.timer = null;
    if (!this.running || this.sessions.get(s.host) !== s) return;
    if (this.hosts.version !== this.syncedVersion) {
      this.sync();
      if (this.sessions.get(s.host) !== s) return;
    }
    this.stats.attempt++;
    const done = (r: Result): void => this.complete(s, r);
    s.cancel = this.spec.http ? this.httpProbe(s.host, done) : this.tcpProbe(s.host, done);
  };

  private complete(s: Session, r: Result): void {
    s.cancel = null;
    if (!this.running || this.sessions.get(s.host) !== s) return;
    const host = s.host;
    const failedBefore = (host.healthFlagBits & HEALTH_FLAG_FAILED_ACTIVE_HC) !== 0;
    if (r === Result.Pass) {
      this.stats.success++;
      s.failures = 0;
      if (failedBefore && ++s.successes >= this.healthyThreshold) {
        s.successes = 0;
        host.healthy = true;
        this.transition(host, true, r);
      }
    } else {
      this.stats.failure++;
      if (r === Result.Timeout) this.stats.timeout++;
      else if (r === Result.NetworkFail) this.stats.networkFailure++;
      s.successes = 0;
      if (!failedBefore && ++s.failures >= this.unhealthyThreshold) {
        s.failures = 0;
        host.healthy = false;
        if (r === Result.Timeout) host.healthFlagBits |= HEALTH_FLAG_ACTIVE_HC_TIMEOUT;
        this.transition(host, false, r);
      }
    }
    this.schedule(s, this.spec.intervalMs);
  }

  private transition(host: Host, healthy: boolean, r: Result): void {
    this.hosts.refresh();
    this.syncedVersion = this.hosts.version;
    this.opts.logger?.info(
      { cluster: this.opts.clusterName, host: host.key, healthy, reason: RESULT_NAMES[r], healthFlags: host.healthFlags() },
      healthy ? 'health check: host is healthy again' : 'health check: host marked unhealthy',
    );
    this.opts.onChange(host, healthy);
  }

  private statusPasses(status: number): boolean {
    for (const [start, end] of this.ranges) if (status >= start && status < end) return true;
    return false;
  }

  // === probes: each returns a function that aborts it ===

  private httpProbe(host: Host, done: (r: Result) => void): () => void {
    const timeoutMs = this.spec.timeoutMs;
    let finished = false;
    const req = http.request({
      host: host.address,
      port: host.port,
      method: 'GET',
      path: this.spec.http!.path || '/',
      headers: { host: this.hostHeader, 'user-agent': HEALTH_CHECK_USER_AGENT, connection: 'close' },
      agent: false,
      timeout: timeoutMs,
    });
    const finish = (r: Result): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      req.destroy();
      done(r);
    };
    // `timeout` above is an idle timeout; this one bounds the whole check.
    const timer = setTimeout(finish, timeoutMs, Result.Timeout);
    timer.unref();
    req.on('timeout', () => finish(Result.Timeout));
    req.on('error', () => finish(Result.NetworkFail));
    req.on('response', (res) => {
      const pass = this.statusPasses(res.statusCode ?? 0);
      res.on('error', () => finish(Result.NetworkFail));
      res.on('end', () => finish(pass ? Result.Pass : Result.Fail));
      res.resume();
    });
    req.end();
    return () => {
      finished = true;
      clearTimeout(timer);
      req.destroy();
    };
  }

  private tcpProbe(host: Host, done: (r: Result) => void): () => void {
    let finished = false;
    const sock = net.connect({ host: host.address, port: host.port });
    const finish = (r: Result): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      done(r);
    };
    const timer = setTimeout(finish, this.spec.timeoutMs, Result.Timeout);
    timer.unref();
    sock.on('connect', () => finish(Result.Pass));
    sock.on('error', () => finish(Result.NetworkFail));
    return () => {
      finished = true;
      clearTimeout(timer);
      sock.destroy();
    };
  }
}

const RESULT_NAMES = ['pass', 'unexpected_status', 'network_failure', 'timeout'] as const;

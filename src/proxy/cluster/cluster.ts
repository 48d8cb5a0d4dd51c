/**
 * A running cluster: its host set, load balancer, health checkers, DNS resolver and one
 * connection pool per host. Built from a ClusterSpec + LoadAssignment of a Snapshot and reused
 * across Snapshots while those are unchanged, so pools and health state survive a reload.
 */
import type { Logger } from 'pino';
import type { ClusterSpec, EndpointSpec, LoadAssignment } from '../../config/snapshot.js';
import { ClusterResources, HostPool } from '../upstream/pool.js';
import { H2HostPool } from '../http2/upstream-pool.js';
import { Host, HostSet, hostsFromAssignment } from './host.js';
import { createLoadBalancer, type LbContext, type LoadBalancer } from './lb/index.js';
import { HealthChecker } from './health-check.js';
import { DnsResolver } from './dns.js';
import { OutlierDetector } from './outlier.js';
import { DnsCache, type DnsCacheManager } from './dns-cache.js';
import { DynamicForwardProxy, type DynamicHostCallback } from './dynamic-forward-proxy.js';
import type { ClusterStatus } from '../../admin/types.js';

const ORIGINAL_DST_CLEANUP_MS = 5000;

export interface ClusterHooks {
  /** Outlier detection ejected a host of this cluster (for the ejections counter). */
  onOutlierEjection?(cluster: string): void;
  /**
   * Where DYNAMIC_FORWARD_PROXY clusters get their DNS cache (ClusterManager's, shared and kept
   * across reloads); without it such a cluster makes a private one.
   */
  dnsCaches?: DnsCacheManager;
}

export class Cluster {
  readonly name: string;
  readonly spec: ClusterSpec;
  readonly resources: ClusterResources;
  readonly hosts: HostSet;
  private lb: LoadBalancer;
  private readonly pools = new Map<string, HostPool>();
  /** protocol http2: one multiplexing session pool per host. */
  private readonly h2Pools = new Map<string, H2HostPool>();
  private checkers: HealthChecker[] = [];
  private dns: DnsResolver | null = null;
  /** DYNAMIC_FORWARD_PROXY: hosts made on first use from the request's Host. */
  private dfp: DynamicForwardProxy | null = null;
  private releaseDnsCache: (() => void) | null = null;
  private cleanup: NodeJS.Timeout | null = null;
  private readonly logger: Logger;
  private readonly outlier: OutlierDetector | null = null;
  /** JSON of the assignment this cluster was built or last updated from. */
  assignmentKey: string;
  readonly specKey: string;

  constructor(spec: ClusterSpec, assignment: LoadAssignment | undefined, logger: Logger, hooks: ClusterHooks = {}) {
    this.name = spec.name;
    this.spec = spec;
    this.logger = logger;
    this.specKey = JSON.stringify(spec);
    this.assignmentKey = JSON.stringify(assignment ?? null);
    this.resources = new ClusterResources(spec.circuitBreakers);
    this.hosts = new HostSet();
    this.lb = createLoadBalancer(spec, this.hosts);
    const eps = assignment?.endpoints ?? [];
    if (spec.type === 'STRICT_DNS' || spec.type === 'LOGICAL_DNS') {
      this.dns = new DnsResolver(eps as EndpointSpec[], {
        refreshMs: spec.dnsRefreshRateMs,
        family: spec.dnsLookupFamily,
        onUpdate: (resolved) => this.setEndpoints(resolved),
        onError: (host, err) => this.logger.warn({ cluster: this.name, host, err: err.message }, 'DNS resolution failed; keeping the previous addresses'),
      });
    } else if (spec.type === 'DYNAMIC_FORWARD_PROXY') {
      this.dfp = this.dynamicForwardProxy(spec, hooks.dnsCaches);
    } else if (spec.type !== 'ORIGINAL_DST') {
      this.setEndpoints(eps);
    }
    if (spec.outlierDetection !== null) {
      this.outlier = new OutlierDetector(spec.outlierDetection, this.hosts, {
        onChange: () => {
          this.hosts.refresh();
          this.lb.refresh();
        },
        onEject: (host, reason, ms) => {
          hooks.onOutlierEjection?.(this.name);
          this.logger.warn({ cluster: this.name, host: host.key, reason, ejectionMs: ms }, 'outlier detection ejected a host');
        },
        onUneject: (host) => this.logger.info({ cluster: this.name, host: host.key }, 'outlier detection returned a host'),
      });
      this.outlier.start();
    }
    if (spec.type === 'ORIGINAL_DST') {
      this.cleanup = setInterval(() => this.cleanupOriginalDst(), ORIGINAL_DST_CLEANUP_MS);
      this.cleanup.unref();
    }
  }

  /** Resolve DNS once and start health checks. */
  async start(): Promise<void> {
    if (this.dns) {
      try {
        await this.dns.start();
      } catch (e) {
        this.logger.warn({ cluster: this.name, err: (e as Error).message }, 'initial DNS resolution failed; will retry');
      }
    }
    for (const hc of this.spec.healthChecks) {
      const checker = new HealthChecker(hc, this.hosts, {
        clusterName: this.name,
        onChange: () => this.lb.refresh(),
        logger: this.logger,
      });
      this.checkers.push(checker);
      checker.start();
    }
  }

  /** EDS / DNS update: keep Host objects (and their pools, counters, health) that stayed. */
  setEndpoints(endpoints: readonly EndpointSpec[]): void {
    const next = hostsFromAssignment(endpoints as EndpointSpec[], this.hosts);
    const keep = new Set(next.map((h) => h.key));
    for (const [key, pool] of this.pools) {
      if (!keep.has(key)) {
        pool.close();
        this.pools.delete(key);
      }
    }
    for (const [key, pool] of this.h2Pools) {
      if (!keep.has(key)) {
        pool.close();
        this.h2Pools.delete(key);
      }
    }
    this.hosts.all = next;
    this.hosts.refresh();
    this.lb.refresh();
  }

  updateAssignment(assignment: LoadAssignment | undefined): void {
    this.assignmentKey = JSON.stringify(assignment ?? null);
    if (this.spec.type === 'ORIGINAL_DST' || this.dns || this.dfp) return;
    this.setEndpoints(assignment?.endpoints ?? []);
  }

  pick(ctx: LbContext): Host | null {
    return this.lb.pick(ctx);
  }

  /** The router's report of one attempt: HTTP status, or 0 for connect failure / reset / timeout. */
  reportOutcome(host: Host, status: number): void {
    this.outlier?.report(host, status);
  }

  /**
   * DYNAMIC_FORWARD_PROXY: the host for a request whose Host is `authority`, from the DNS cache.
   * `done` runs synchronously when the name is cached, else after its first lookup; errors are
   * the local replies to send (DF when the name does not resolve).
   */
  dynamicHost(authority: string, ctx: LbContext, done: DynamicHostCallback): void {
    if (this.dfp === null) {
      done(null, this.lb.pick(ctx));
      return;
    }
    this.dfp.pick(authority, ctx, done);
  }

  private dynamicForwardProxy(spec: ClusterSpec, caches: DnsCacheManager | undefined): DynamicForwardProxy | null {
    const d = spec.dynamicForwardProxy;
    if (d === undefined) {
      this.logger.error({ cluster: spec.name }, 'DYNAMIC_FORWARD_PROXY cluster without dynamicForwardProxy settings; it has no hosts');
      return null;
    }
    const config = { refreshMs: spec.dnsRefreshRateMs, hostTtlMs: d.hostTtlMs, maxHosts: d.maxHosts, family: spec.dnsLookupFamily };
    const cache = caches ? caches.acquire(config) : new DnsCache(config);
    this.releaseDnsCache = caches ? () => caches.release(cache) : () => cache.close();
    const byKey = new Map<string, Host>();
    return new DynamicForwardProxy(
      spec.name,
      d,
      cache,
      {
        setEndpoints: (eps) => {
          this.setEndpoints(eps);
          byKey.clear();
          for (const h of this.hosts.all) byKey.set(h.key, h);
        },
        host: (key) => byKey.get(key),
      },
      this.logger,
    );
  }

  /** ORIGINAL_DST: the host for a connection's original destination, created on first use. */
  originalDstHost(address: string, port: number): Host {
    const key = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
    let h = this.origIndex.get(key);
    if (!h) {
      const added = hostsFromAssignment(
        [{ address, port, weight: 1, healthStatus: 'HEALTHY', locality: { region: '', zone: '', subZone: '' }, priority: 0 }],
        undefined,
      );
      h = added[0]!;
      this.origIndex.set(key, h);
      this.hosts.all = [...this.hosts.all, h];
      this.hosts.refresh();
    }
    return h;
  }

  private readonly origIndex = new Map<string, Host>();

  private cleanupOriginalDst(): void {
    const stay: Host[] = [];
    for (const h of this.hosts.all) {
      const pool = this.pools.get(h.key);
      const h2 = this.h2Pools.get(h.key);
      if (h.stats.rqActive > 0 || (pool && pool.size > 0) || (h2 && h2.size > 0)) stay.push(h);
      else {
        pool?.close();
        this.pools.delete(h.key);
        this.h2Pools.delete(h.key);
        this.origIndex.delete(h.key);
      }
    }
    if (stay.length !== this.hosts.all.length) {
      this.hosts.all = stay;
      this.hosts.refresh();
    }
  }

  pool(host: Host): HostPool {
    let p = this.pools.get(host.key);
    if (p === undefined) {
      p = new HostPool(host, {
        connectTimeoutMs: this.spec.connectTimeoutMs,
        bindAddress: this.spec.upstreamBindAddress,
        settings: this.spec.pool,
        resources: this.resources,
      });
      this.pools.set(host.key, p);
    }
    return p;
  }

  h2Pool(host: Host): H2HostPool {
    let p = this.h2Pools.get(host.key);
    if (p === undefined) {
      p = new H2HostPool(host, { connectTimeoutMs: this.spec.connectTimeoutMs, bindAddress: this.spec.upstreamBindAddress, settings: this.spec.pool, resources: this.resources });
      this.h2Pools.set(host.key, p);
    }
    return p;
  }

  close(): void {
    for (const c of this.checkers) c.stop();
    this.checkers = [];
    this.outlier?.stop();
    this.dns?.stop();
    this.dfp?.close();
    this.releaseDnsCache?.();
    this.releaseDnsCache = null;
    if (this.cleanup) clearInterval(this.cleanup);
    for (const p of this.pools.values()) p.close();
    this.pools.clear();
    for (const p of this.h2Pools.values()) p.close();
    this.h2Pools.clear();
  }

  status(): ClusterStatus {
    return {
      name: this.name,
      type: this.spec.type,
      lbPolicy: this.spec.lbPolicy,
      hosts: this.hosts.all.map((h) => ({
        address: h.address,
        port: h.port,
        weight: h.weight,
        healthy: h.healthy,
        healthFlags: h.healthFlags(),
        stats: { ...h.stats },
      })),
    };
  }
}

/**
 * The host selection of a DYNAMIC_FORWARD_PROXY cluster (Envoy's dynamic forward proxy: the
 * `envoy.clusters.dynamic_forward_proxy` cluster together with its HTTP filter, which waits for
 * the DNS cache before the router picks a host).
 *
 * The request's Host is an app id, `app` or Dapr's `app.namespace`; the upstream is the cluster's
 * `nameTemplate` with `{appId}` / `{namespace}` filled in, resolved through the shared DnsCache,
 * on the cluster's port. Each name's addresses become hosts of the cluster (one connection pool
 * per address, shared by names that resolve to the same one); a request picks round robin among
 * its name's healthy hosts, preferring ones its earlier tries did not use.
 *
 * Failures are Envoy's local replies: a name that does not resolve (or cannot be a DNS name) is
 * 503 "DNS resolution failure" with flag DF; a new name when the cache holds `maxHosts` is 503
 * "DNS cache overflow" (logged, at most once a minute).
 */
import type { Logger } from 'pino';
import { CapaError } from '../../errors.js';
import { parseAppId } from '../../config/app-id.js';
import type { DynamicForwardProxySpec, EndpointSpec } from '../../config/snapshot.js';
import type { DnsCache, DnsCacheListener, DnsHostInfo } from './dns-cache.js';
import { hostKey, type Host } from './host.js';
import type { LbContext } from './lb/types.js';

/** Envoy's local reply bodies (proxy_filter.cc ResponseStrings); the Invoker recognises the first. */
export const DNS_RESOLUTION_FAILURE = 'DNS resolution failure';
export const DNS_CACHE_OVERFLOW = 'DNS cache overflow';

export type DynamicHostCallback = (err: CapaError | null, host: Host | null) => void;

/** How the cluster applies the hosts this selector wants (no back-reference to the Cluster). */
export interface DynamicHostSink {
  /** Replace the cluster's host set; Host objects (pools, stats, health) of kept addresses survive. */
  setEndpoints(endpoints: readonly EndpointSpec[]): void;
  /** The cluster's current Host for `address:port` after setEndpoints. */
  host(key: string): Host | undefined;
}

interface NameHosts {
  readonly addresses: readonly string[];
  hosts: Host[];
  next: number;
}

const DNS_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const NO_LOCALITY = { region: '', zone: '', subZone: '' };
const OVERFLOW_LOG_INTERVAL_MS = 60_000;

/** The DNS name for a Host (`app` or `app.namespace`), or an Error saying why there is none. */
export function dnsNameFor(spec: DynamicForwardProxySpec, authority: string): string | Error {
  const id = stripPort(authority);
  const parts = parseAppId(id);
  if (parts === undefined) return new Error(`'${id}' is not an app id (app or app.namespace)`);
  const name = spec.nameTemplate.replaceAll('{appId}', parts.app).replaceAll('{namespace}', parts.namespace ?? spec.defaultNamespace).toLowerCase();
  if (!DNS_NAME.test(name)) return new Error(`the template makes '${name}', which cannot be a DNS name`);
  return name;
}

function stripPort(authority: string): string {
  const colon = authority.lastIndexOf(':');
  return colon > 0 && authority.indexOf(']') < 0 ? authority.slice(0, colon) : authority;
}

// === impl DynamicForwardProxy ===

export class DynamicForwardProxy implements DnsCacheListener {
  private readonly spec: DynamicForwardProxySpec;
  private readonly clusterName: string;
  private readonly cache: DnsCache;
  private readonly sink: DynamicHostSink;
  private readonly logger: Logger;
  private readonly byName = new Map<string, NameHosts>();
  private readonly unsubscribe: () => void;
  /** Date.now() of the last overflow warning: one a minute at most while the cache stays full. */
  private overflowLoggedAt = -Infinity;
  private closed = false;

  constructor(clusterName: string, spec: DynamicForwardProxySpec, cache: DnsCache, sink: DynamicHostSink, logger: Logger) {
    this.clusterName = clusterName;
    this.spec = spec;
    this.cache = cache;
    this.sink = sink;
    this.logger = logger;
    this.unsubscribe = cache.subscribe(this);
  }

  /**
   * The host for a request whose Host is `authority`. `done` runs synchronously when the name is
   * cached, else once its first lookup finished.
   */
  pick(authority: string, ctx: LbContext, done: DynamicHostCallback): void {
    if (this.closed) {
      done(new CapaError('CAPA_ERR_UPSTREAM_CONNECT', `cluster ${this.clusterName} was removed`), null);
      return;
    }
    const name = dnsNameFor(this.spec, authority);
    if (typeof name !== 'string') {
      done(new CapaError('CAPA_ERR_DNS_RESOLUTION', `${DNS_RESOLUTION_FAILURE}: ${name.message}`), null);
      return;
    }
    const r = this.cache.load(name, (info) => this.answer(info, ctx, done));
    if (r.status === 'in-cache') this.answer(r.info, ctx, done);
    else if (r.status === 'overflow') {
      const now = Date.now();
      if (now - this.overflowLoggedAt >= OVERFLOW_LOG_INTERVAL_MS) {
        this.overflowLoggedAt = now;
        this.logger.warn({ cluster: this.clusterName, maxHosts: this.spec.maxHosts, host: name }, 'DNS cache overflow: maxHosts names are cached, new names get 503 until one expires (hostTtl)');
      }
      done(new CapaError('CAPA_ERR_DNS_CACHE_OVERFLOW', `${DNS_CACHE_OVERFLOW}: the cache is full (maxHosts ${this.spec.maxHosts}); '${name}' is not in it`), null);
    }
  }

  private answer(info: DnsHostInfo, ctx: LbContext, done: DynamicHostCallback): void {
    const entry = this.byName.get(info.name);
    if (entry === undefined || entry.hosts.length === 0) {
      done(new CapaError('CAPA_ERR_DNS_RESOLUTION', `${DNS_RESOLUTION_FAILURE}: '${info.name}' did not resolve (${info.error || 'no address'})`), null);
      return;
    }
    done(null, pickRoundRobin(entry, ctx.attempted ?? null));
  }

  // === DnsCacheListener ===

  onHostUpdate(info: DnsHostInfo): void {
    this.byName.set(info.name, { addresses: info.addresses, hosts: [], next: 0 });
    this.rebuild();
  }

  onHostRemove(name: string): void {
    if (this.byName.delete(name)) this.rebuild();
  }

  /** The cluster's hosts are the union of every name's addresses; each name then points at its own. */
  private rebuild(): void {
    const port = this.spec.port;
    const endpoints: EndpointSpec[] = [];
    for (const e of this.byName.values()) {
      for (const address of e.addresses) endpoints.push({ address, port, weight: 1, healthStatus: 'UNKNOWN', locality: NO_LOCALITY, priority: 0 });
    }
    this.sink.setEndpoints(endpoints);
    for (const e of this.byName.values()) {
      const hosts: Host[] = [];
      for (const address of e.addresses) {
        const h = this.sink.host(hostKey(address, port));
        if (h !== undefined) hosts.push(h);
      }
      e.hosts = hosts;
      if (e.next >= hosts.length) e.next = 0;
    }
  }

  /** Names with addresses and the hosts they use (status, tests). */
  names(): { name: string; hosts: string[] }[] {
    return [...this.byName].map(([name, e]) => ({ name, hosts: e.hosts.map((h) => h.key) }));
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
  }
}

/**
 * Round robin over a name's hosts: the next healthy one this request has not tried, else the
 * next healthy one, else (all unhealthy: Envoy's panic mode) the next one.
 */
function pickRoundRobin(e: NameHosts, attempted: readonly Host[] | null): Host {
  const hosts = e.hosts;
  const n = hosts.length;
  let fallback = -1;
  for (let i = 0; i < n; i++) {
    const idx = (e.next + i) % n;
    const h = hosts[idx]!;
    if (!h.healthy) continue;
    if (attempted === null || !attempted.includes(h)) {
      e.next = (idx + 1) % n;
      return h;
    }
    if (fallback < 0) fallback = idx;
  }
  const idx = fallback >= 0 ? fallback : e.next % n;
  e.next = (idx + 1) % n;
  return hosts[idx]!;
}

/**
 * The DNS cache of dynamic forward proxy clusters (Envoy `DnsCacheImpl`,
 * source/extensions/common/dynamic_forward_proxy/dns_cache_impl.cc), with the same rules:
 *
 * - `load(name)` answers from the cache when the name's first resolution is done (whether it
 *   succeeded or not); otherwise the caller waits for that resolution — one lookup per name,
 *   however many requests ask at once.
 * - At most `maxHosts` names are cached; a new name beyond that is refused ('overflow') until a
 *   name expires. Names already cached keep working.
 * - Every name is re-resolved `refreshMs` after its last resolution. A name not used for
 *   `hostTtlMs` is dropped at its next refresh instead (its listeners hear `onHostRemove`).
 * - Once a name has addresses they stay until a later lookup returns others: a failed refresh
 *   keeps them. A name that never resolved stays cached without addresses (so requests for it
 *   fail fast) and is tried again at each refresh.
 * - A lookup that has not answered in 5 s counts as failed (Envoy's dns_query_timeout default),
 *   so waiting requests are not held by a resolver that hangs; a late answer is still used.
 *
 * Lookups are the clusters' one DNS lookup (`lookupAddresses` in dns.ts: getaddrinfo, so
 * /etc/hosts counts). The cache is runtime state, never part of a Snapshot; DnsCacheManager
 * shares one cache between the clusters that ask for the same settings and keeps it across a
 * reload that re-creates a cluster with them.
 */
import dns from 'node:dns';
import type { DnsLookupFamily } from './dns.js';
import { lookupAddresses, type DnsLookup } from './dns.js';

export interface DnsCacheConfig {
  readonly refreshMs: number;
  readonly hostTtlMs: number;
  readonly maxHosts: number;
  readonly family: DnsLookupFamily;
}

/** One cached name. Mutated by the cache only; readers treat it as read-only. */
export interface DnsHostInfo {
  readonly name: string;
  /** Addresses of the last successful lookup (sorted); [] while the name never resolved. */
  addresses: readonly string[];
  /** Why the last lookup failed; '' after a success. */
  error: string;
  /** The first lookup finished (successfully or not). */
  resolved: boolean;
  /** When a request last asked for this name (the cache's clock). */
  lastUsed: number;
}

export type LoadResult = { readonly status: 'in-cache'; readonly info: DnsHostInfo } | { readonly status: 'loading' } | { readonly status: 'overflow' };

/** What a cluster hears from the cache (Envoy DnsCache::UpdateCallbacks). */
export interface DnsCacheListener {
  /** A name got addresses, or other ones. */
  onHostUpdate(info: DnsHostInfo): void;
  /** A name that had addresses expired. */
  onHostRemove(name: string): void;
}

export interface DnsCacheStats {
  queryAttempt: number;
  querySuccess: number;
  queryFailure: number;
  hostAdded: number;
  hostRemoved: number;
  hostOverflow: number;
  hostAddressChanged: number;
}

export interface DnsCacheOptions {
  /** Default dns.promises.lookup; unit tests pass their own. */
  readonly lookup?: DnsLookup;
  /** Monotonic ms; default performance.now. */
  readonly now?: () => number;
}

/** Envoy dns_cache_config.dns_query_timeout default. */
export const DNS_QUERY_TIMEOUT_MS = 5000;

interface Entry {
  readonly info: DnsHostInfo;
  /** Requests waiting for the first lookup; null once it is done. */
  waiters: ((info: DnsHostInfo) => void)[] | null;
  timer: NodeJS.Timeout | null;
}

// === impl DnsCache ===

export class DnsCache {
  readonly config: DnsCacheConfig;
  readonly stats: DnsCacheStats = { queryAttempt: 0, querySuccess: 0, queryFailure: 0, hostAdded: 0, hostRemoved: 0, hostOverflow: 0, hostAddressChanged: 0 };
  private readonly entries = new Map<string, Entry>();
  private readonly listeners = new Set<DnsCacheListener>();
  private readonly lookup: DnsLookup;
  private readonly now: () => number;
  private closed = false;

  constructor(config: DnsCacheConfig, opts: DnsCacheOptions = {}) {
    this.config = config;
    this.lookup = opts.lookup ?? dns.promises.lookup;
    this.now = opts.now ?? (() => performance.now());
  }

  /**
   * The cached resolution of `name` (lower-case), or 'loading' — then `onLoaded` runs once the
   * first lookup is done, after the listeners heard of its addresses — or 'overflow' when the
   * cache is full.
   */
  load(name: string, onLoaded: (info: DnsHostInfo) => void): LoadResult {
    const e = this.entries.get(name);
    if (e !== undefined) {
      e.info.lastUsed = this.now();
      if (e.waiters === null) return { status: 'in-cache', info: e.info };
      e.waiters.push(onLoaded);
      return { status: 'loading' };
    }
    if (this.closed || this.entries.size >= this.config.maxHosts) {
      this.stats.hostOverflow++;
      return { status: 'overflow' };
    }
    const entry: Entry = { info: { name, addresses: [], error: '', resolved: false, lastUsed: this.now() }, waiters: [onLoaded], timer: null };
    this.entries.set(name, entry);
    this.stats.hostAdded++;
    this.resolve(entry);
    return { status: 'loading' };
  }

  get size(): number {
    return this.entries.size;
  }

  /** The cached names with their state (admin, tests). */
  hosts(): DnsHostInfo[] {
    return [...this.entries.values()].map((e) => ({ ...e.info }));
  }

  /** Hear about address changes and expiries; the names that already have addresses are told at once. */
  subscribe(listener: DnsCacheListener): () => void {
    this.listeners.add(listener);
    for (const e of this.entries.values()) if (e.info.addresses.length > 0) listener.onHostUpdate(e.info);
    return () => this.listeners.delete(listener);
  }

  /** Stop refreshing; lookups in flight still answer their waiters. */
  close(): void {
    this.closed = true;
    for (const e of this.entries.values()) {
      if (e.timer !== null) clearTimeout(e.timer);
      e.timer = null;
    }
    this.entries.clear();
    this.listeners.clear();
  }

  private resolve(entry: Entry): void {
    this.stats.queryAttempt++;
    let settled = false;
    const timeout = setTimeout(() => {
      settled = true;
      this.finish(entry, null, `ETIMEOUT (no answer in ${DNS_QUERY_TIMEOUT_MS / 1000}s)`);
    }, DNS_QUERY_TIMEOUT_MS);
    timeout.unref();
    lookupAddresses(this.lookup, entry.info.name, this.config.family).then(
      (addresses) => {
        clearTimeout(timeout);
        if (!settled) this.finish(entry, addresses, '');
        else this.lateAnswer(entry, addresses);
      },
      (err: unknown) => {
        clearTimeout(timeout);
        if (!settled) this.finish(entry, null, describeLookupError(err));
      },
    );
  }

  /** An answer after the query timeout: take its addresses; the refresh timer is already set. */
  private lateAnswer(entry: Entry, addresses: string[]): void {
    const info = entry.info;
    if (this.closed || this.entries.get(info.name) !== entry || addresses.length === 0 || sameAddresses(info.addresses, addresses)) return;
    info.addresses = addresses;
    info.error = '';
    for (const l of this.listeners) l.onHostUpdate(info);
  }

  private finish(entry: Entry, addresses: string[] | null, error: string): void {
    const info = entry.info;
    const current = !this.closed && this.entries.get(info.name) === entry;
    if (addresses !== null && addresses.length === 0) {
      addresses = null;
      error = `no ${this.config.family === 'V4_ONLY' ? 'IPv4 ' : this.config.family === 'V6_ONLY' ? 'IPv6 ' : ''}address`;
    }
    if (addresses === null) {
      this.stats.queryFailure++;
      info.error = error;
    } else {
      this.stats.querySuccess++;
      info.error = '';
      if (!sameAddresses(info.addresses, addresses)) {
        if (info.addresses.length > 0) this.stats.hostAddressChanged++;
        info.addresses = addresses;
        if (current) for (const l of this.listeners) l.onHostUpdate(info);
      }
    }
    info.resolved = true;
    const waiters = entry.waiters;
    entry.waiters = null;
    if (waiters !== null) for (const w of waiters) w(info);
    if (current) {
      entry.timer = setTimeout(() => this.refresh(entry), Math.max(1, this.config.refreshMs));
      entry.timer.unref();
    }
  }

  /** Envoy onReResolve: expire the name if it went unused for hostTtl, else look it up again. */
  private refresh(entry: Entry): void {
    entry.timer = null;
    if (this.closed || this.entries.get(entry.info.name) !== entry) return;
    if (this.now() - entry.info.lastUsed > this.config.hostTtlMs) {
      this.entries.delete(entry.info.name);
      this.stats.hostRemoved++;
      if (entry.info.addresses.length > 0) for (const l of this.listeners) l.onHostRemove(entry.info.name);
      return;
    }
    this.resolve(entry);
  }
}

function sameAddresses(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** "ENOTFOUND", "EAI_AGAIN (temporary failure)"... — what the DF local reply and the logs say. */
function describeLookupError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string') return e.code;
  return e instanceof Error ? e.message : String(err);
}

// === impl DnsCacheManager ===

/**
 * Envoy's DnsCacheManager: clusters with the same cache settings share one DnsCache. Reference
 * counted: ClusterManager builds a reloaded cluster before it closes the old one, so a cluster
 * re-created with the same settings finds the cache still warm.
 */
export class DnsCacheManager {
  private readonly caches = new Map<string, { cache: DnsCache; refs: number }>();
  private readonly opts: DnsCacheOptions;

  constructor(opts: DnsCacheOptions = {}) {
    this.opts = opts;
  }

  acquire(config: DnsCacheConfig): DnsCache {
    const key = `${config.refreshMs}|${config.hostTtlMs}|${config.maxHosts}|${config.family}`;
    let c = this.caches.get(key);
    if (c === undefined) {
      c = { cache: new DnsCache(config, this.opts), refs: 0 };
      this.caches.set(key, c);
    }
    c.refs++;
    return c.cache;
  }

  release(cache: DnsCache): void {
    for (const [key, c] of this.caches) {
      if (c.cache !== cache) continue;
      if (--c.refs === 0) {
        this.caches.delete(key);
        cache.close();
      }
      return;
    }
  }
}

/**
 * Host and HostSet: the upstream endpoints of one cluster.
 *
 * A Host is one `address:port`. Its health is a small bit set of Envoy health flags, so that a
 * failed active health check and an EDS `UNHEALTHY` status are tracked independently (as in
 * Envoy's `Host::HealthFlag`): the host is healthy only when no flag is set. `healthy` is the
 * convenient view of that: reading it tells whether any flag is set; writing it sets or clears
 * the active-health-check flag only (that is what the health checker and the pool do).
 *
 * Initial health: a new host is healthy unless its EndpointSpec says UNHEALTHY or DRAINING.
 * Envoy differs when active health checks are configured: it starts new hosts as
 * `/failed_active_hc /pending_active_hc` and waits for the first check. We serve them from the
 * start and take them out after `unhealthyThreshold` failed checks instead, so a cluster whose
 * checks are slow still has hosts during start-up.
 *
 * HostSet holds `all` hosts and the `healthy` subset. `refresh()` recomputes `healthy` and bumps
 * `version`; load balancers compare that version on each pick and rebuild lazily when it moved.
 */
import type { EndpointSpec } from '../../config/snapshot.js';

// === Health flags (Envoy Host::HealthFlag, the subset we use) ===

export const HEALTH_FLAG_FAILED_ACTIVE_HC = 1;
export const HEALTH_FLAG_FAILED_EDS_HEALTH = 2;
export const HEALTH_FLAG_EDS_STATUS_DRAINING = 4;
/** Set together with FAILED_ACTIVE_HC when the last failed check was a timeout. */
export const HEALTH_FLAG_ACTIVE_HC_TIMEOUT = 8;
/** Ejected by outlier detection (Envoy FAILED_OUTLIER_CHECK); set and cleared by outlier.ts. */
export const HEALTH_FLAG_OUTLIER = 16;

/** Flags that make a host unhealthy (ACTIVE_HC_TIMEOUT is informational only). */
const UNHEALTHY_MASK = HEALTH_FLAG_FAILED_ACTIVE_HC | HEALTH_FLAG_FAILED_EDS_HEALTH | HEALTH_FLAG_EDS_STATUS_DRAINING | HEALTH_FLAG_OUTLIER;

export type Locality = EndpointSpec['locality'];
export type EndpointHealthStatus = EndpointSpec['healthStatus'];

/** Per-host counters shown by the admin /clusters page. The pool increments them. */
export interface HostStats {
  rqTotal: number;
  rqError: number;
  rqActive: number;
  cxTotal: number;
  cxActive: number;
  cxConnectFail: number;
  rqTimeout: number;
}

export interface HostInit {
  weight?: number;
  locality?: Locality;
  priority?: number;
  healthStatus?: EndpointHealthStatus;
}

const NO_LOCALITY: Locality = Object.freeze({ region: '', zone: '', subZone: '' });

/** "1.2.3.4:80" or "[::1]:80". */
export function hostKey(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

// === impl Host ===

export class Host {
  readonly address: string;
  readonly port: number;
  readonly key: string;
  /** Load-balancing weight, ≥ 1. */
  weight: number;
  locality: Locality;
  priority: number;
  /** Envoy health flags (HEALTH_FLAG_*); 0 = healthy. */
  healthFlagBits = 0;
  readonly stats: HostStats = { rqTotal: 0, rqError: 0, rqActive: 0, cxTotal: 0, cxActive: 0, cxConnectFail: 0, rqTimeout: 0 };

  constructor(address: string, port: number, init: HostInit = {}) {
    this.address = address;
    this.port = port;
    this.key = hostKey(address, port);
    this.weight = normalizeWeight(init.weight);
    this.locality = init.locality ?? NO_LOCALITY;
    this.priority = init.priority ?? 0;
    this.setEdsHealthStatus(init.healthStatus ?? 'UNKNOWN');
  }

  static fromEndpoint(ep: EndpointSpec): Host {
    return new Host(ep.address, ep.port, ep);
  }

  /**
   * Set by active health checking (and anything else that marks a host failed, e.g. the pool).
   * Reads true only when no health flag is set, so an EDS UNHEALTHY host stays unhealthy even
   * after passing an active check.
   */
  get healthy(): boolean {
    return (this.healthFlagBits & UNHEALTHY_MASK) === 0;
  }

  set healthy(value: boolean) {
    if (value) this.healthFlagBits &= ~(HEALTH_FLAG_FAILED_ACTIVE_HC | HEALTH_FLAG_ACTIVE_HC_TIMEOUT);
    else this.healthFlagBits |= HEALTH_FLAG_FAILED_ACTIVE_HC;
  }

  /** Apply the EDS / static health status of the endpoint (UNKNOWN and HEALTHY count as healthy). */
  setEdsHealthStatus(status: EndpointHealthStatus): void {
    let bits = this.healthFlagBits & ~(HEALTH_FLAG_FAILED_EDS_HEALTH | HEALTH_FLAG_EDS_STATUS_DRAINING);
    if (status === 'UNHEALTHY') bits |= HEALTH_FLAG_FAILED_EDS_HEALTH;
    else if (status === 'DRAINING') bits |= HEALTH_FLAG_EDS_STATUS_DRAINING;
    this.healthFlagBits = bits;
  }

  /** Envoy's /clusters `health_flags` string: 'healthy' or e.g. '/failed_active_hc/active_hc_timeout'. */
  healthFlags(): string {
    const b = this.healthFlagBits;
    if (b === 0) return 'healthy';
    let s = '';
    if (b & HEALTH_FLAG_FAILED_ACTIVE_HC) s += '/failed_active_hc';
    if (b & HEALTH_FLAG_OUTLIER) s += '/failed_outlier_check';
    if (b & HEALTH_FLAG_FAILED_EDS_HEALTH) s += '/failed_eds_health';
    if (b & HEALTH_FLAG_ACTIVE_HC_TIMEOUT) s += '/active_hc_timeout';
    if (b & HEALTH_FLAG_EDS_STATUS_DRAINING) s += '/eds_status_draining';
    return s;
  }
}

function normalizeWeight(w: number | undefined): number {
  return w !== undefined && Number.isFinite(w) && w >= 1 ? Math.floor(w) : 1;
}

// === impl HostSet ===

export class HostSet {
  all: Host[];
  /** Hosts with no health flag set; recomputed by refresh(). */
  healthy: Host[] = [];
  /** Bumped by every refresh(); load balancers rebuild when it changes. */
  version = 0;

  constructor(hosts: Host[] = []) {
    this.all = hosts;
    this.refresh();
  }

  /** Replace the membership (EDS / DNS update) and refresh. */
  update(hosts: Host[]): void {
    this.all = hosts;
    this.refresh();
  }

  /** Recompute `healthy` after a health or membership change. */
  refresh(): void {
    const healthy: Host[] = [];
    for (const h of this.all) if (h.healthy) healthy.push(h);
    this.healthy = healthy;
    this.version++;
  }
}

/**
 * Build the host list for a new assignment, reusing the Host objects of `previous` that have
 * the same key so counters and active-health state survive an EDS or DNS update. Weight,
 * locality, priority and EDS health are taken from the new endpoint. A key listed twice keeps
 * its first endpoint.
 */
export function hostsFromAssignment(endpoints: readonly EndpointSpec[], previous?: HostSet): Host[] {
  const old = new Map<string, Host>();
  if (previous) for (const h of previous.all) old.set(h.key, h);
  const seen = new Set<string>();
  const out: Host[] = [];
  for (const ep of endpoints) {
    const key = hostKey(ep.address, ep.port);
    if (seen.has(key)) continue;
    seen.add(key);
    const existing = old.get(key);
    if (existing) {
      existing.weight = normalizeWeight(ep.weight);
      existing.locality = ep.locality;
      existing.priority = ep.priority;
      existing.setEdsHealthStatus(ep.healthStatus);
      out.push(existing);
    } else {
      out.push(Host.fromEndpoint(ep));
    }
  }
  return out;
}

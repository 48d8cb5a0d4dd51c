/**
 * The load-balancer contract. `pick()` is on the request hot path: implementations allocate
 * nothing per pick; all derived state (cumulative weights, schedulers, rings) is rebuilt in
 * `refresh()`, which also runs lazily when the HostSet's version moved.
 */
import type { ClusterSpec } from '../../../config/snapshot.js';
import type { Host } from '../host.js';

export interface LbContext {
  /** Hash for RING_HASH / MAGLEV from the route's hash policy; undefined → random pick. */
  hash: number | undefined;
  /** Hosts already tried by this request (retries prefer others). */
  attempted?: Host[] | null;
}

export interface LoadBalancer {
  /** Choose a host; null when none is available. */
  pick(ctx: LbContext): Host | null;
  /** The host set changed (health, DNS, EDS). Also done lazily by pick() when HostSet.version moved. */
  refresh(): void;
}

/** The part of a ClusterSpec the load balancers read. */
export type LbSpec = Pick<ClusterSpec, 'lbPolicy' | 'healthyPanicThreshold' | 'ringHash' | 'leastRequest'>;

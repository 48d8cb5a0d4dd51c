/**
 * What a listener's connections need from the rest of the process, as narrow data and
 * functions: the current compiled config (swapped per Snapshot), the clusters, the logger,
 * original-destination lookup and DNS for ORIGINAL_DST.
 */
import type { Logger } from 'pino';
import type { ClusterManager } from '../cluster/cluster-manager.js';
import type { HttpListenerConfig } from './listener-config.js';

export interface OriginalDestination {
  readonly address: string;
  readonly port: number;
}

/** The part of a stream the original-destination lookup reads. */
export interface OriginalDstQuery {
  readonly authority: string;
  readonly requestHeaders: { get(name: string): string | undefined };
  readonly info: { readonly downstreamLocalAddress: string };
  /** Set by the connection from SO_ORIGINAL_DST when the socket was redirected. */
  readonly originalDst?: OriginalDestination | null;
}

export interface ListenerRuntime {
  config: HttpListenerConfig;
  readonly clusters: ClusterManager;
  readonly logger: Logger;
  /** True once the process drains: responses carry `connection: close`. */
  draining: boolean;
  originalDestination(s: OriginalDstQuery): OriginalDestination | null;
  resolve(host: string): Promise<string>;
  /** A request rejected before it became a stream (400/408/431), for logs and counters. */
  onProtocolError?(status: number, flag: string, remoteAddress: string): void;
}

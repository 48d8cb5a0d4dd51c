/**
 * The filter contract (DESIGN.md "The filter contract").
 *
 * A factory is registered under an Envoy-style name and type URL. For every listener of a
 * Snapshot its `build()` runs once; for every route `forRoute()` runs once with that route's
 * override; per request the returned `create()` makes the filter (or hands back a shared,
 * stateless one). Hooks are optional: a chain is reduced to the hooks its filters really have
 * when the Snapshot is compiled, so an absent hook costs nothing per request or per chunk.
 */
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { HeaderMap } from '../proxy/headers.js';
import type { StreamInfo } from '../proxy/stream-info.js';
import type { NodeInfo, TrafficDirection } from '../config/snapshot.js';

/** 'stop' pauses the chain until the filter calls `continueRequest()` or `sendLocalReply()`. */
export type FilterStatus = 'continue' | 'stop';
export type FilterResult = FilterStatus | void | Promise<FilterStatus | void>;

export interface LocalReplyOptions {
  /** Envoy response flag to record (e.g. 'RL' for rate limited). */
  flag?: string;
  /** Extra response headers, lower-case names. */
  headers?: Record<string, string>;
  /** Envoy response code details, e.g. 'rate_limited'. */
  details?: string;
  /** gRPC status to send instead of an HTTP body when the request is gRPC. */
  grpcStatus?: number;
}

/** What a filter sees of one request. */
export interface HttpStream {
  readonly info: StreamInfo;
  readonly requestHeaders: HeaderMap;
  /** Mutable: a filter may rewrite them before the router runs. */
  method: string;
  path: string;
  authority: string;
  readonly isGrpc: boolean;
  /** Name of the matched route, '' if none matched. */
  readonly routeName: string;
  /** Cluster the route points at ('' for redirect / direct response / weighted before pick). */
  readonly clusterName: string;
  /** End the request here: the rest of the chain and the upstream are skipped. */
  sendLocalReply(status: number, body: string, opts?: LocalReplyOptions): void;
  /** Resume the chain after a hook returned 'stop'. */
  continueRequest(): void;
}

export interface ResponseHead {
  status: number;
  readonly headers: HeaderMap;
}

export interface HttpFilter {
  onRequestHeaders?(s: HttpStream, endStream: boolean): FilterResult;
  /** Observe request body bytes (decoded, not framed). Must not keep `chunk` unless it says so. */
  onRequestData?(s: HttpStream, chunk: Buffer, end: boolean): void;
  /** May change the response status and headers; synchronous. */
  onResponseHeaders?(s: HttpStream, head: ResponseHead): void;
  onResponseData?(s: HttpStream, chunk: Buffer, end: boolean): void;
  /** After the last byte was written or the stream was reset: metrics, access log. */
  onComplete?(s: HttpStream): void;
}

export interface FilterContext {
  readonly registry: Registry;
  readonly logger: Logger;
  readonly listenerName: string;
  readonly direction: TrafficDirection;
  readonly node: NodeInfo;
  readonly accessLog: { readonly path: string; readonly format: 'json' | 'text' };
}

export interface BuiltFilter<R = unknown> {
  /**
   * Called once per route when the Snapshot is compiled. Returns the per-request constructor,
   * or null when the filter is off for this route (so it costs nothing there).
   */
  forRoute(perRoute: R | undefined): (() => HttpFilter) | null;
  /** Release timers/handles when the Snapshot that built this is retired. */
  close?(): void;
}

export interface HttpFilterFactory<C = unknown, R = unknown> {
  /** Canonical name, Envoy's where Envoy has one (envoy.filters.http.fault). */
  readonly name: string;
  /** Type URL of the xDS typed_config this factory accepts. */
  readonly typeUrl: string;
  readonly aliases?: readonly string[];
  /** Parse listener-level config (YAML or xDS JSON). Throws a ZodError naming the field. */
  parseConfig(raw: unknown): C;
  /** Parse a per-route / per-virtual-host override. Absent: the filter takes none. */
  parsePerRoute?(raw: unknown): R;
  build(config: C, ctx: FilterContext): BuiltFilter<R>;
}

export const ROUTER_FILTER_NAME = 'envoy.filters.http.router';

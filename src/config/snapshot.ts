/**
 * The Snapshot: every configuration source (YAML, xDS, Envoy bootstrap) compiles into this one
 * immutable, JSON-serialisable value. The data plane reads only the current Snapshot.
 *
 * Shapes mirror Envoy's Listener / RouteConfiguration / Cluster / ClusterLoadAssignment (v3) so
 * an xDS translator can produce the same value. Durations are milliseconds, sizes bytes.
 */

export interface Snapshot {
  /** Monotonic per source; shown in /config_dump. */
  readonly version: string;
  readonly source: 'yaml' | 'xds' | 'bootstrap';
  readonly node: NodeInfo;
  readonly mode: 'sidecar' | 'proxyless';
  readonly sidecar: SidecarSettings;
  readonly app: AppSettings;
  readonly listeners: readonly ListenerSpec[];
  /** RouteConfiguration by name (Envoy RDS resource name). */
  readonly routeConfigs: Readonly<Record<string, RouteConfigSpec>>;
  readonly clusters: Readonly<Record<string, ClusterSpec>>;
  /** ClusterLoadAssignment by cluster name (EDS). STATIC/STRICT_DNS clusters carry theirs here too. */
  readonly endpoints: Readonly<Record<string, LoadAssignment>>;
  readonly accessLog: AccessLogSettings;
  /** Layotto-style TCP copy of sampled capture-listener connections into pcap files. */
  readonly tcpCopy: TcpCopySettings;
  /** FlowControlPolicy documents in force, and the rejected ones (src/config/policies.ts). */
  readonly flowControl: FlowControlSettings;
  /** Runtime API components (state stores, ...), built by the primary's ComponentManager. */
  readonly components: readonly ComponentSpec[];
  /** Service invocation: the internal listener and app id → cluster (src/config/compile-invocation.ts). */
  readonly invocation: InvocationSettings;
  readonly drainTimeMs: number;
  readonly concurrency: number;
  readonly logLevel: LogLevel;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  /** Istio workload labels used by the stats filter (source_workload, namespace, ...). */
  readonly workloadName: string;
  readonly namespace: string;
  readonly canonicalService: string;
  readonly canonicalRevision: string;
  readonly meshId: string;
}

export interface SidecarSettings {
  /** Runtime HTTP API port (Dapr-compatible). */
  readonly port: number;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly adminPort: number;
  readonly adminAddress: string;
  readonly prometheusPort: number;
  readonly readinessPort: number;
  readonly interception: {
    readonly enabled: boolean;
    readonly outboundPort: number;
    readonly inboundPort: number;
  };
}

export interface AppSettings {
  readonly id: string;
  readonly port: number;
  readonly address: string;
  /** How the runtime calls the app back: `http` (Dapr routes, CloudEvents) or `grpc` (AppCallback). */
  readonly protocol: 'http' | 'grpc';
}

export interface AccessLogSettings {
  /** '' = off, '/dev/stdout', or a file path. */
  readonly path: string;
  /** 'json' (Envoy's default fields as JSON) or 'text' (Envoy's default format line). */
  readonly format: 'json' | 'text';
}

export interface TcpCopySettings {
  readonly enabled: boolean;
  readonly sampleRate: number;
  readonly maxPerSecond: number;
  readonly maxBytesPerConnection: number;
  readonly diskBudget: number;
  readonly maxFileSize: number;
  readonly directory: string;
  readonly ports: readonly number[];
}

export interface FlowControlSettings {
  /** Watched policy directories, absolute (config `flowControl.policyDirs` + CLI `--policy-dir`). */
  readonly policyDirs: readonly string[];
  /** In document order; the first matching policy applies to a request. */
  readonly policies: readonly FlowPolicySpec[];
  readonly rejected: readonly RejectedPolicy[];
}

export interface FlowPolicySpec {
  readonly name: string;
  /** The file it came from (`main.yaml#flowControl.policies[0]` for inline ones). */
  readonly source: string;
  /** The spec as written; the flow_control filter parses it. */
  readonly spec: unknown;
  readonly hash: string;
  /** Its document is now invalid; this is the last good version, kept in force. */
  readonly stale: boolean;
}

export interface RejectedPolicy {
  readonly source: string;
  /** metadata.name when readable, else `#<document index>`. */
  readonly name: string;
  /** `file:line:col: path: reason`. */
  readonly errors: readonly string[];
  /** The previous good version of the document stays in force. */
  readonly keptPrevious: boolean;
}

/** One `components:` entry (a Dapr component): metadata as written, checked by the type's schema. */
export interface ComponentSpec {
  readonly name: string;
  /** `state.memory`, `state.redis`, ... */
  readonly type: string;
  readonly version: string;
  /** Metadata without the secret references (they are resolved when the component starts). */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** metadata key → the secret that holds its value (Dapr's `secretKeyRef`), read at start. */
  readonly secretRefs: Readonly<Record<string, SecretRef>>;
}

export interface SecretRef {
  /** The secret store component (`auth.secretStore`). */
  readonly store: string;
  /** The secret's name in that store. */
  readonly name: string;
  /** The key inside the secret; the secret's name when not given (single-valued stores). */
  readonly key: string;
}

/** What the Invoker needs to know; the routing itself is in the listener and route config named `listener`. */
export interface InvocationSettings {
  /** Name of the internal OUTBOUND listener on 127.0.0.1; '' when service invocation is off (no listener). */
  readonly listener: string;
  /** Default route timeout of an app id. */
  readonly timeoutMs: number;
  /** Listed app ids, in config order. */
  readonly apps: readonly InvocationAppSpec[];
  /**
   * The dynamic forward proxy cluster (`invoke|*`) that app ids listed nowhere are routed to
   * (`nameResolution.type: dns`); '' when unlisted app ids are unknown (`type: static`).
   */
  readonly onDemandCluster: string;
}

export interface InvocationAppSpec {
  readonly appId: string;
  readonly cluster: string;
  /** `cluster`: invocation.apps; `static` / `dns`: a cluster made by name resolution. */
  readonly resolvedBy: 'cluster' | 'static' | 'dns';
}

// === Listeners ===

export type ListenerKind = 'plain' | 'outbound-capture' | 'inbound-capture';
export type TrafficDirection = 'INBOUND' | 'OUTBOUND' | 'UNSPECIFIED';

export interface ListenerSpec {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly kind: ListenerKind;
  readonly direction: TrafficDirection;
  /** 'http' runs the HTTP connection manager; 'tcp' proxies bytes to `tcpCluster`; 'auto' sniffs. */
  readonly protocol: 'http' | 'tcp' | 'auto';
  /** Name of a RouteConfiguration in Snapshot.routeConfigs (HTTP listeners). */
  readonly routeConfigName: string;
  /** Cluster for 'tcp' listeners (Envoy tcp_proxy); ORIGINAL_DST clusters pass through. */
  readonly tcpCluster: string;
  readonly httpFilters: readonly FilterConfigSpec[];
  readonly http: HttpConnectionSettings;
}

export interface HttpConnectionSettings {
  /** Envoy request_timeout: whole request received (408). 0 = off. */
  readonly requestTimeoutMs: number;
  /** Envoy request_headers_timeout (408). 0 = off. */
  readonly requestHeadersTimeoutMs: number;
  /** Envoy common_http_protocol_options.idle_timeout for downstream connections. */
  readonly idleTimeoutMs: number;
  /** Envoy max_request_headers_kb, in bytes (431 above it). */
  readonly maxRequestHeadersBytes: number;
  /** Envoy use_remote_address + xff handling: append the peer to x-forwarded-for. */
  readonly useRemoteAddress: boolean;
  /** Envoy generate_request_id. */
  readonly generateRequestId: boolean;
  /** Value of the `server` response header (Envoy server_name). */
  readonly serverName: string;
  /** Envoy stream_idle_timeout... kept simple: max body bytes a filter may buffer for retries. */
  readonly maxReplayBufferBytes: number;
}

export interface FilterConfigSpec {
  /** Canonical Envoy-style name, e.g. envoy.filters.http.router. */
  readonly name: string;
  /** Parsed later by the factory's own schema; kept as plain data here. */
  readonly config: unknown;
  readonly disabled: boolean;
}

// === Routes ===

export interface RouteConfigSpec {
  readonly name: string;
  readonly virtualHosts: readonly VirtualHostSpec[];
  readonly requestHeadersToAdd: readonly HeaderValueOption[];
  readonly requestHeadersToRemove: readonly string[];
  readonly responseHeadersToAdd: readonly HeaderValueOption[];
  readonly responseHeadersToRemove: readonly string[];
}

export interface VirtualHostSpec {
  readonly name: string;
  /** Envoy domain forms: exact, `*.suffix`, `prefix*`, `*`. Port is ignored when matching unless given. */
  readonly domains: readonly string[];
  readonly routes: readonly RouteSpec[];
  readonly requestHeadersToAdd: readonly HeaderValueOption[];
  readonly requestHeadersToRemove: readonly string[];
  readonly responseHeadersToAdd: readonly HeaderValueOption[];
  readonly responseHeadersToRemove: readonly string[];
  /** Per-filter overrides by filter name (Envoy typed_per_filter_config). */
  readonly typedPerFilterConfig: Readonly<Record<string, unknown>>;
  readonly retryPolicy: RetryPolicySpec | null;
}

export interface HeaderValueOption {
  readonly name: string;
  readonly value: string;
  /** Envoy append_action: APPEND_IF_EXISTS_OR_ADD | OVERWRITE_IF_EXISTS_OR_ADD | ADD_IF_ABSENT. */
  readonly action: 'append' | 'overwrite' | 'addIfAbsent';
}

export interface RouteSpec {
  readonly name: string;
  readonly match: RouteMatchSpec;
  readonly action: RouteActionSpec;
  readonly requestHeadersToAdd: readonly HeaderValueOption[];
  readonly requestHeadersToRemove: readonly string[];
  readonly responseHeadersToAdd: readonly HeaderValueOption[];
  readonly responseHeadersToRemove: readonly string[];
  readonly typedPerFilterConfig: Readonly<Record<string, unknown>>;
}

export interface RouteMatchSpec {
  /** Exactly one of prefix / path / safeRegex / pathSeparatedPrefix is set. */
  readonly prefix?: string;
  readonly path?: string;
  readonly safeRegex?: string;
  readonly caseSensitive: boolean;
  readonly methods: readonly string[];
  readonly headers: readonly HeaderMatcherSpec[];
  readonly queryParameters: readonly QueryParameterMatcherSpec[];
}

export interface HeaderMatcherSpec {
  readonly name: string;
  readonly exact?: string;
  readonly prefix?: string;
  readonly suffix?: string;
  readonly contains?: string;
  readonly safeRegex?: string;
  /** true: header must be present (any value); false: must be absent. */
  readonly present?: boolean;
  readonly invert: boolean;
}

export interface QueryParameterMatcherSpec {
  readonly name: string;
  readonly exact?: string;
  readonly prefix?: string;
  readonly safeRegex?: string;
  readonly present?: boolean;
}

export type RouteActionSpec = ForwardActionSpec | RedirectActionSpec | DirectResponseActionSpec;

export interface ForwardActionSpec {
  readonly kind: 'route';
  /** Either `cluster` or non-empty `weightedClusters`. */
  readonly cluster: string;
  readonly weightedClusters: readonly { readonly name: string; readonly weight: number }[];
  readonly prefixRewrite?: string;
  readonly regexRewrite?: { readonly pattern: string; readonly substitution: string };
  readonly hostRewriteLiteral?: string;
  /** Envoy auto_host_rewrite: use the upstream host's address as Host. */
  readonly autoHostRewrite: boolean;
  /** Envoy route timeout; 0 disables. Default 15000 as in Envoy. */
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly retryPolicy: RetryPolicySpec | null;
  readonly hashPolicy: readonly HashPolicySpec[];
  /**
   * Envoy max_stream_duration.grpc_timeout_header_max: -1 = the `grpc-timeout` header is ignored;
   * otherwise a gRPC request's `grpc-timeout` (none = no limit) replaces timeoutMs, capped at this
   * value when it is > 0.
   */
  readonly grpcTimeoutHeaderMaxMs: number;
  /** Subtracted from the `grpc-timeout` deadline (when smaller), to leave time for the reply. */
  readonly grpcTimeoutHeaderOffsetMs: number;
}

export interface RetryPolicySpec {
  /** Envoy retry_on list: 5xx, gateway-error, reset, connect-failure, retriable-status-codes, ... */
  readonly retryOn: readonly string[];
  readonly numRetries: number;
  /** 0 = no per-try timeout. */
  readonly perTryTimeoutMs: number;
  readonly retriableStatusCodes: readonly number[];
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
}

export type HashPolicySpec =
  | { readonly kind: 'header'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'cookie'; readonly name: string; readonly terminal: boolean }
  | { readonly kind: 'sourceIp'; readonly terminal: boolean }
  | { readonly kind: 'queryParameter'; readonly name: string; readonly terminal: boolean };

export interface RedirectActionSpec {
  readonly kind: 'redirect';
  readonly schemeRedirect?: string;
  readonly hostRedirect?: string;
  readonly portRedirect?: number;
  readonly pathRedirect?: string;
  readonly prefixRewrite?: string;
  /** 301, 302, 303, 307, 308. */
  readonly responseCode: number;
  readonly stripQuery: boolean;
}

export interface DirectResponseActionSpec {
  readonly kind: 'directResponse';
  readonly status: number;
  readonly body: string;
}

// === Clusters ===

/**
 * DYNAMIC_FORWARD_PROXY (Envoy's `envoy.clusters.dynamic_forward_proxy`): hosts are made on first
 * use from the request's Host, through a DNS cache (src/proxy/cluster/dynamic-forward-proxy.ts).
 */
export type ClusterType = 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS' | 'ORIGINAL_DST' | 'EDS' | 'DYNAMIC_FORWARD_PROXY';
export type LbPolicy = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'RING_HASH' | 'MAGLEV' | 'CLUSTER_PROVIDED';

export interface ClusterSpec {
  readonly name: string;
  readonly type: ClusterType;
  readonly lbPolicy: LbPolicy;
  readonly connectTimeoutMs: number;
  /**
   * Upstream protocol: HTTP/1.1, HTTP/2 (h2c), or 'downstream' = the protocol the request came in
   * with (Envoy use_downstream_protocol_config; Istio's passthrough clusters).
   */
  readonly protocol: 'http1' | 'http2' | 'downstream';
  /** STRICT_DNS / DYNAMIC_FORWARD_PROXY re-resolution interval. */
  readonly dnsRefreshRateMs: number;
  readonly dnsLookupFamily: 'V4_ONLY' | 'V6_ONLY' | 'AUTO' | 'V4_PREFERRED' | 'ALL';
  readonly ringHash: { readonly minimumRingSize: number; readonly maximumRingSize: number };
  readonly leastRequest: { readonly choiceCount: number };
  readonly circuitBreakers: CircuitBreakerThresholds;
  readonly pool: PoolSettings;
  readonly healthChecks: readonly HealthCheckSpec[];
  /** Envoy common_lb_config.healthy_panic_threshold (percent); 0 disables panic mode. */
  readonly healthyPanicThreshold: number;
  /**
   * Envoy upstream_bind_config.source_address: the local address upstream connections are made
   * from ('' = the kernel's choice). Istio's inbound passthrough uses 127.0.0.6 so the capture
   * rules let the proxy's connection to the app through.
   */
  readonly upstreamBindAddress: string;
  /** Envoy outlier_detection (passive health checking); null when the cluster has none. */
  readonly outlierDetection: OutlierDetectionSpec | null;
  /** Only on DYNAMIC_FORWARD_PROXY clusters: how a request's Host becomes a DNS name, and the DNS cache. */
  readonly dynamicForwardProxy?: DynamicForwardProxySpec;
}

/**
 * Envoy's dynamic forward proxy ClusterConfig + DnsCacheConfig, for service invocation: the Host
 * of a request is an app id, `app` or Dapr's `app.namespace`, and the host to connect to is
 * `nameTemplate` with `{appId}` and `{namespace}` (`defaultNamespace` for the short form)
 * resolved by DNS, on `port`. Resolutions are cached (refreshed every `dnsRefreshRateMs` of the
 * cluster), at most `maxHosts` names at once; a name unused for `hostTtlMs` is dropped.
 */
export interface DynamicForwardProxySpec {
  readonly nameTemplate: string;
  readonly defaultNamespace: string;
  readonly port: number;
  /** Envoy dns_cache_config.host_ttl (default 5m). */
  readonly hostTtlMs: number;
  /** Envoy dns_cache_config.max_hosts (default 1024). */
  readonly maxHosts: number;
}

/** Envoy OutlierDetection, the consecutive-error subset (see src/proxy/cluster/outlier.ts). */
export interface OutlierDetectionSpec {
  /** Consecutive 5xx (connect failures and resets count as 503) that eject a host; 0 = off. */
  readonly consecutive5xx: number;
  /** Consecutive 502/503/504 (and connect failures, resets, timeouts) that eject a host; 0 = off. */
  readonly consecutiveGatewayFailure: number;
  /** How often ejections are reviewed (un-ejection happens on these ticks). */
  readonly intervalMs: number;
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionTimeMs: number;
  /** At most this percent of the cluster's hosts ejected at once. */
  readonly maxEjectionPercent: number;
}

export interface CircuitBreakerThresholds {
  readonly maxConnections: number;
  readonly maxPendingRequests: number;
  readonly maxRequests: number;
  readonly maxRetries: number;
}

export interface PoolSettings {
  /** Close an idle upstream connection after this long (Envoy idle_timeout, default 1h). */
  readonly idleTimeoutMs: number;
  /** 0 = unlimited. */
  readonly maxRequestsPerConnection: number;
}

export interface HealthCheckSpec {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly unhealthyThreshold: number;
  readonly healthyThreshold: number;
  readonly http: { readonly path: string; readonly host: string; readonly expectedStatuses: readonly [number, number][] } | null;
  /** TCP connect-only check when http is null. */
}

export interface LoadAssignment {
  readonly clusterName: string;
  readonly endpoints: readonly EndpointSpec[];
}

export interface EndpointSpec {
  /** IP address or, for STRICT_DNS, a host name resolved by the cluster. */
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly healthStatus: 'UNKNOWN' | 'HEALTHY' | 'UNHEALTHY' | 'DRAINING';
  readonly locality: { readonly region: string; readonly zone: string; readonly subZone: string };
  readonly priority: number;
}

/** Freeze a Snapshot deeply so the data plane can never mutate it. */
export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}

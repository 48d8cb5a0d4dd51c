/**
 * What the HTTP connection manager needs per route, compiled once per Snapshot: the reduced
 * filter chain, the merged header mutations, the action with regexes compiled and weighted
 * clusters laid out for one random draw.
 */
import type {
  ForwardActionSpec,
  HashPolicySpec,
  HeaderValueOption,
  RetryPolicySpec,
  RouteConfigSpec,
  RouteSpec,
  VirtualHostSpec,
  RedirectActionSpec,
  DirectResponseActionSpec,
} from '../../config/snapshot.js';
import type { HttpFilter } from '../../filters/types.js';

export interface ReducedChain {
  /** Per-request constructors, in config order (router excluded). */
  readonly create: readonly (() => HttpFilter)[];
  readonly hasRequestData: boolean;
  readonly hasResponseHeaders: boolean;
  readonly hasResponseData: boolean;
  readonly hasComplete: boolean;
}

export interface HeaderMutations {
  readonly add: readonly HeaderValueOption[];
  readonly remove: readonly string[];
}

export interface CompiledForward {
  readonly kind: 'route';
  /** Cumulative weights for weighted clusters; single cluster → one entry. */
  readonly clusters: readonly string[];
  readonly cumulative: readonly number[];
  readonly total: number;
  readonly prefix: string | undefined;
  readonly prefixRewrite: string | undefined;
  readonly regexRewrite: { readonly re: RegExp; readonly substitution: string } | undefined;
  readonly hostRewrite: string | undefined;
  readonly autoHostRewrite: boolean;
  readonly timeoutMs: number;
  /** -1: ignore `grpc-timeout`; see ForwardActionSpec. */
  readonly grpcTimeoutHeaderMaxMs: number;
  readonly grpcTimeoutHeaderOffsetMs: number;
  readonly retry: CompiledRetry | null;
  readonly hashPolicy: readonly HashPolicySpec[];
}

export interface CompiledRetry {
  readonly numRetries: number;
  readonly perTryTimeoutMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly on5xx: boolean;
  readonly onGatewayError: boolean;
  readonly onReset: boolean;
  readonly onConnectFailure: boolean;
  readonly onRetriableStatus: boolean;
  readonly statusCodes: ReadonlySet<number>;
}

export type CompiledAction = CompiledForward | RedirectActionSpec | DirectResponseActionSpec;

export interface RouteData {
  readonly chain: ReducedChain;
  readonly action: CompiledAction;
  readonly requestHeaders: HeaderMutations;
  readonly responseHeaders: HeaderMutations;
}

export function compileRetry(p: RetryPolicySpec | null): CompiledRetry | null {
  if (!p || p.numRetries <= 0) return null;
  const on = new Set(p.retryOn.map((s) => s.trim()));
  return {
    numRetries: p.numRetries,
    perTryTimeoutMs: p.perTryTimeoutMs,
    backoffBaseMs: p.backoffBaseMs,
    backoffMaxMs: p.backoffMaxMs,
    on5xx: on.has('5xx'),
    onGatewayError: on.has('gateway-error'),
    onReset: on.has('reset') || on.has('5xx'),
    onConnectFailure: on.has('connect-failure') || on.has('5xx') || on.has('gateway-error'),
    onRetriableStatus: on.has('retriable-status-codes'),
    statusCodes: new Set(p.retriableStatusCodes),
  };
}

/** Translate Envoy's RE2 substitution (\1) to JavaScript's ($1). */
function jsSubstitution(s: string): string {
  return s.replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1');
}

function compileForward(a: ForwardActionSpec, r: RouteSpec, vh: VirtualHostSpec): CompiledForward {
  const clusters: string[] = [];
  const cumulative: number[] = [];
  let total = 0;
  if (a.weightedClusters.length > 0) {
    for (const w of a.weightedClusters) {
      if (w.weight <= 0) continue;
      total += w.weight;
      clusters.push(w.name);
      cumulative.push(total);
    }
  } else {
    clusters.push(a.cluster);
    cumulative.push(1);
    total = 1;
  }
  return {
    kind: 'route',
    clusters,
    cumulative,
    total,
    prefix: r.match.prefix,
    prefixRewrite: a.prefixRewrite,
    regexRewrite: a.regexRewrite ? { re: new RegExp(a.regexRewrite.pattern, 'g'), substitution: jsSubstitution(a.regexRewrite.substitution) } : undefined,
    hostRewrite: a.hostRewriteLiteral,
    autoHostRewrite: a.autoHostRewrite,
    timeoutMs: a.timeoutMs,
    grpcTimeoutHeaderMaxMs: a.grpcTimeoutHeaderMaxMs,
    grpcTimeoutHeaderOffsetMs: a.grpcTimeoutHeaderOffsetMs,
    retry: compileRetry(a.retryPolicy ?? vh.retryPolicy),
    hashPolicy: a.hashPolicy,
  };
}

export function compileAction(r: RouteSpec, vh: VirtualHostSpec): CompiledAction {
  const a = r.action;
  if (a.kind === 'route') return compileForward(a, r, vh);
  return a;
}

/** Envoy applies route, then virtual host, then route configuration mutations (most specific first). */
export function mergeMutations(r: RouteSpec, vh: VirtualHostSpec, rc: RouteConfigSpec): { request: HeaderMutations; response: HeaderMutations } {
  return {
    request: {
      add: [...r.requestHeadersToAdd, ...vh.requestHeadersToAdd, ...rc.requestHeadersToAdd],
      remove: [...r.requestHeadersToRemove, ...vh.requestHeadersToRemove, ...rc.requestHeadersToRemove].map((s) => s.toLowerCase()),
    },
    response: {
      add: [...r.responseHeadersToAdd, ...vh.responseHeadersToAdd, ...rc.responseHeadersToAdd],
      remove: [...r.responseHeadersToRemove, ...vh.responseHeadersToRemove, ...rc.responseHeadersToRemove].map((s) => s.toLowerCase()),
    },
  };
}

/** Pick a cluster by weight (one random draw). */
export function pickCluster(f: CompiledForward): string {
  if (f.clusters.length === 1) return f.clusters[0]!;
  const x = Math.random() * f.total;
  const c = f.cumulative;
  for (let i = 0; i < c.length; i++) if (x < c[i]!) return f.clusters[i]!;
  return f.clusters[f.clusters.length - 1]!;
}

/** Rewrite the path (path only; query preserved by the caller). */
export function rewritePath(f: CompiledForward, path: string): string {
  if (f.regexRewrite) {
    f.regexRewrite.re.lastIndex = 0;
    return path.replace(f.regexRewrite.re, f.regexRewrite.substitution);
  }
  if (f.prefixRewrite !== undefined && f.prefix !== undefined) {
    const rest = path.slice(f.prefix.length);
    let out = f.prefixRewrite + rest;
    if (out === '') out = '/';
    return out;
  }
  return path;
}

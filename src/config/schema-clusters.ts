/**
 * YAML schema of clusters (Envoy Cluster v3 + its ClusterLoadAssignment, camelCase). Endpoints
 * may be written short ("10.0.0.1:8080", "[::1]:8080", {address, port, ...}) or in Envoy's
 * `loadAssignment` form; both become the Snapshot's LoadAssignment.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { durationMs, describe } from './units.js';
import { byType, exactlyOne, int, list, nonEmpty, port, text } from './schema-common.js';
import type { CircuitBreakerThresholds, ClusterSpec, ClusterType, EndpointSpec, HealthCheckSpec, LoadAssignment, OutlierDetectionSpec } from './snapshot.js';

const CLUSTER_TYPES = ['STATIC', 'STRICT_DNS', 'LOGICAL_DNS', 'ORIGINAL_DST', 'EDS'] as const;
const LB_POLICIES = ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'RING_HASH', 'MAGLEV', 'CLUSTER_PROVIDED'] as const;
const HEALTH = ['UNKNOWN', 'HEALTHY', 'UNHEALTHY', 'DRAINING'] as const;

/** Envoy's circuit breaker defaults. */
export const DEFAULT_CIRCUIT_BREAKERS: CircuitBreakerThresholds = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };

const HOST = /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/;
const host = nonEmpty.superRefine((h, ctx) => {
  if (!isIP(h) && !HOST.test(h)) ctx.addIssue({ code: 'custom', message: `expected an IP address or a host name, got ${describe(h)}` });
});

const locality = z.strictObject({ region: text.default(''), zone: text.default(''), subZone: text.default('') });
const defaultLocality = { region: '', zone: '', subZone: '' };

/** "host:port", "[v6]:port". */
export function splitHostPort(s: string): { address: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:[\]]+):(\d+)$/.exec(s);
  if (!m) return undefined;
  return { address: m[1]!, port: Number(m[2]) };
}

const endpointString = text.transform((s, ctx): EndpointSpec => {
  const hp = splitHostPort(s.trim());
  const bad = (message: string) => {
    ctx.addIssue({ code: 'custom', message });
    return z.NEVER;
  };
  if (!hp) return bad(`expected "host:port" (IPv6 as "[::1]:8080"), got ${describe(s)}`);
  if (hp.port < 1 || hp.port > 65535) return bad(`port ${hp.port} is out of range 1-65535`);
  if (!isIP(hp.address) && !HOST.test(hp.address)) return bad(`expected an IP address or a host name, got ${describe(hp.address)}`);
  return { address: hp.address, port: hp.port, weight: 1, healthStatus: 'UNKNOWN', locality: defaultLocality, priority: 0 };
});

const endpointObject = z
  .strictObject({
    address: host,
    port,
    weight: int(1, 0xffffffff, 'a weight').default(1),
    healthStatus: z.enum(HEALTH).default('UNKNOWN'),
    locality: locality.optional(),
    priority: int(0, 127, 'a priority').default(0),
  })
  .transform((e): EndpointSpec => ({ ...e, locality: e.locality ?? defaultLocality }));

const endpoint = byType('"host:port" or {address, port}', { string: endpointString, object: endpointObject });

/** Envoy ClusterLoadAssignment. */
const loadAssignment = z
  .strictObject({
    clusterName: text.optional(),
    endpoints: list(
      z.strictObject({
        locality: locality.optional(),
        priority: int(0, 127, 'a priority').default(0),
        loadBalancingWeight: int(1).optional(),
        lbEndpoints: list(
          z.strictObject({
            endpoint: z.strictObject({
              address: z.strictObject({ socketAddress: z.strictObject({ address: host, portValue: port, protocol: z.literal('TCP').optional() }) }),
              hostname: text.optional(),
            }),
            loadBalancingWeight: int(1, 0xffffffff, 'a weight').default(1),
            healthStatus: z.enum(HEALTH).default('UNKNOWN'),
          }),
        ).default([]),
      }),
    ).default([]),
  })
  .transform((la) =>
    la.endpoints.flatMap((group, g) =>
      group.lbEndpoints.map((lb, e) => ({
        path: ['loadAssignment', 'endpoints', g, 'lbEndpoints', e, 'endpoint', 'address', 'socketAddress', 'address'],
        ep: {
          address: lb.endpoint.address.socketAddress.address,
          port: lb.endpoint.address.socketAddress.portValue,
          weight: lb.loadBalancingWeight,
          healthStatus: lb.healthStatus,
          locality: group.locality ?? defaultLocality,
          priority: group.priority,
        } satisfies EndpointSpec,
      })),
    ),
  );

const thresholdsShape = {
  maxConnections: int(0).default(DEFAULT_CIRCUIT_BREAKERS.maxConnections),
  maxPendingRequests: int(0).default(DEFAULT_CIRCUIT_BREAKERS.maxPendingRequests),
  maxRequests: int(0).default(DEFAULT_CIRCUIT_BREAKERS.maxRequests),
  maxRetries: int(0).default(DEFAULT_CIRCUIT_BREAKERS.maxRetries),
};

const circuitBreakers = z
  .strictObject({
    thresholds: list(z.strictObject({ priority: z.enum(['DEFAULT', 'HIGH']).default('DEFAULT'), ...thresholdsShape })).optional(),
    ...Object.fromEntries(Object.entries(thresholdsShape).map(([k, v]) => [k, v.unwrap().optional()])),
  })
  .transform((cb, ctx): CircuitBreakerThresholds => {
    const flat = Object.keys(thresholdsShape).filter((k) => (cb as Record<string, unknown>)[k] !== undefined);
    if (cb.thresholds && flat.length) {
      ctx.addIssue({ code: 'custom', message: `use either 'thresholds: [...]' or the flat form, not both`, path: [flat[0]!] });
      return z.NEVER;
    }
    if (cb.thresholds) {
      const d = cb.thresholds.find((t) => t.priority === 'DEFAULT');
      return d ? { maxConnections: d.maxConnections, maxPendingRequests: d.maxPendingRequests, maxRequests: d.maxRequests, maxRetries: d.maxRetries } : DEFAULT_CIRCUIT_BREAKERS;
    }
    return { ...DEFAULT_CIRCUIT_BREAKERS, ...(cb as Partial<CircuitBreakerThresholds>) };
  });

const healthCheck = z
  .strictObject({
    interval: durationMs.default(5000),
    timeout: durationMs.default(1000),
    unhealthyThreshold: int(1).default(3),
    healthyThreshold: int(1).default(2),
    httpHealthCheck: z
      .strictObject({
        path: nonEmpty,
        host: text.default(''),
        expectedStatuses: list(
          z.strictObject({ start: int(100, 599, 'an HTTP status'), end: int(101, 600, 'an HTTP status') }).superRefine((r, ctx) => {
            if (r.end <= r.start) ctx.addIssue({ code: 'custom', message: `end (${r.end}) must be greater than start (${r.start}); the range is [start, end)`, path: ['end'] });
          }),
        ).default([{ start: 200, end: 201 }]),
      })
      .optional(),
    tcpHealthCheck: z.preprocess((v) => (v === null ? {} : v), z.strictObject({})).optional(),
  })
  .transform((h, ctx): HealthCheckSpec => {
    if (exactlyOne(h, ['httpHealthCheck', 'tcpHealthCheck'], ctx) === undefined) return z.NEVER;
    const http = h.httpHealthCheck
      ? { path: h.httpHealthCheck.path, host: h.httpHealthCheck.host, expectedStatuses: h.httpHealthCheck.expectedStatuses.map((r): [number, number] => [r.start, r.end]) }
      : null;
    return { intervalMs: h.interval, timeoutMs: h.timeout, unhealthyThreshold: h.unhealthyThreshold, healthyThreshold: h.healthyThreshold, http };
  });

const percent = byType('a percentage or {value: ...}', {
  number: z.number().min(0).max(100),
  string: int(0, 100, 'a percentage'),
  object: z.strictObject({ value: z.number().min(0).max(100) }).transform((p) => p.value),
});

/** Envoy OutlierDetection (consecutive errors); Envoy's defaults. */
const outlierDetection = z
  .strictObject({
    consecutive5xx: int(0).default(5),
    consecutiveGatewayFailure: int(0).default(5),
    interval: durationMs.default(10_000),
    baseEjectionTime: durationMs.default(30_000),
    maxEjectionTime: durationMs.default(300_000),
    maxEjectionPercent: percent.default(10),
  })
  .transform(
    (o): OutlierDetectionSpec => ({
      consecutive5xx: o.consecutive5xx,
      consecutiveGatewayFailure: o.consecutiveGatewayFailure,
      intervalMs: Math.max(1, o.interval),
      baseEjectionTimeMs: o.baseEjectionTime,
      maxEjectionTimeMs: Math.max(o.maxEjectionTime, o.baseEjectionTime),
      maxEjectionPercent: o.maxEjectionPercent,
    }),
  );

export interface ParsedCluster {
  readonly cluster: ClusterSpec;
  readonly loadAssignment: LoadAssignment;
}

export const clusterSchema = z
  .strictObject({
    name: nonEmpty,
    type: z.enum(CLUSTER_TYPES).optional(),
    lbPolicy: z.enum(LB_POLICIES).optional(),
    connectTimeout: durationMs.default(5000),
    protocol: z.enum(['http1', 'http2', 'downstream']).default('http1'),
    endpoints: list(endpoint).optional(),
    loadAssignment: loadAssignment.optional(),
    healthChecks: list(healthCheck).default([]),
    circuitBreakers: circuitBreakers.optional(),
    outlierDetection: z.preprocess((v) => (v === null ? {} : v), outlierDetection).optional(),
    idleTimeout: durationMs.default(3_600_000),
    maxRequestsPerConnection: int(0).default(0),
    dnsRefreshRate: durationMs.default(5000),
    dnsLookupFamily: z.enum(['V4_ONLY', 'V6_ONLY', 'AUTO', 'V4_PREFERRED', 'ALL']).default('AUTO'),
    ringHashLbConfig: z.strictObject({ minimumRingSize: int(1).default(1024), maximumRingSize: int(1).default(8_388_608) }).optional(),
    leastRequestLbConfig: z.strictObject({ choiceCount: int(2).default(2) }).optional(),
    commonLbConfig: z.strictObject({ healthyPanicThreshold: percent.optional() }).optional(),
    /** Envoy upstream_bind_config: {sourceAddress: {address: 127.0.0.6}} or the short {sourceAddress: 127.0.0.6}. */
    upstreamBindConfig: z
      .strictObject({
        sourceAddress: z.union([z.string().refine((a) => isIP(a) !== 0, 'expected an IP address'), z.strictObject({ address: z.string().refine((a) => isIP(a) !== 0, 'expected an IP address'), portValue: z.number().optional() })]),
      })
      .optional(),
  })
  .transform((c, ctx): ParsedCluster => {
    const issue = (message: string, path: PropertyKey[]) => {
      ctx.addIssue({ code: 'custom', message, path });
      return z.NEVER;
    };
    if (c.endpoints && c.loadAssignment) return issue("use either 'endpoints' or Envoy's 'loadAssignment', not both", ['loadAssignment']);
    const eps = c.loadAssignment ?? (c.endpoints ?? []).map((ep, i) => ({ ep, path: ['endpoints', i] as PropertyKey[] }));
    const named = eps.find((e) => !isIP(e.ep.address));
    const type: ClusterType = c.type ?? (named ? 'STRICT_DNS' : 'STATIC');
    if (type === 'STATIC' && named) return issue(`a STATIC cluster needs IP addresses, got host name '${named.ep.address}' (use type: STRICT_DNS)`, named.path);
    if (type === 'ORIGINAL_DST' && eps.length) return issue('an ORIGINAL_DST cluster takes no endpoints (it forwards to the original destination)', eps[0]!.path.slice(0, 1));
    if (type === 'LOGICAL_DNS' && eps.length !== 1) return issue(`a LOGICAL_DNS cluster needs exactly one endpoint, got ${eps.length}`, eps[1]?.path.slice(0, 1) ?? ['type']);
    const lbPolicy = c.lbPolicy ?? (type === 'ORIGINAL_DST' ? 'CLUSTER_PROVIDED' : 'ROUND_ROBIN');
    if ((type === 'ORIGINAL_DST') !== (lbPolicy === 'CLUSTER_PROVIDED')) {
      return issue(type === 'ORIGINAL_DST' ? 'an ORIGINAL_DST cluster needs lbPolicy CLUSTER_PROVIDED' : 'lbPolicy CLUSTER_PROVIDED needs type ORIGINAL_DST', ['lbPolicy']);
    }
    const ringHash = { minimumRingSize: c.ringHashLbConfig?.minimumRingSize ?? 1024, maximumRingSize: c.ringHashLbConfig?.maximumRingSize ?? 8_388_608 };
    if (ringHash.minimumRingSize > ringHash.maximumRingSize) return issue('minimumRingSize must not be greater than maximumRingSize', ['ringHashLbConfig', 'minimumRingSize']);
    const cluster: ClusterSpec = {
      name: c.name,
      type,
      lbPolicy,
      connectTimeoutMs: c.connectTimeout,
      protocol: c.protocol,
      dnsRefreshRateMs: c.dnsRefreshRate,
      dnsLookupFamily: c.dnsLookupFamily,
      ringHash,
      leastRequest: { choiceCount: c.leastRequestLbConfig?.choiceCount ?? 2 },
      circuitBreakers: c.circuitBreakers ?? DEFAULT_CIRCUIT_BREAKERS,
      pool: { idleTimeoutMs: c.idleTimeout, maxRequestsPerConnection: c.maxRequestsPerConnection },
      healthChecks: c.healthChecks,
      healthyPanicThreshold: c.commonLbConfig?.healthyPanicThreshold ?? 50,
      upstreamBindAddress: bindAddress(c.upstreamBindConfig?.sourceAddress),
      outlierDetection: c.outlierDetection ?? null,
    };
    return { cluster, loadAssignment: { clusterName: c.name, endpoints: eps.map((e) => e.ep) } };
  });

function bindAddress(a: string | { address: string } | undefined): string {
  if (a === undefined) return '';
  return typeof a === 'string' ? a : a.address;
}

/**
 * An ORIGINAL_DST cluster as Istio makes them. The inbound one connects from 127.0.0.6, so the
 * capture rules (`-o lo -s 127.0.0.6/32 -j RETURN`) let the proxy's connection to the app through.
 */
export function originalDstCluster(name: string, sourceAddress?: string): ParsedCluster {
  return clusterSchema.parse({ name, type: 'ORIGINAL_DST', connectTimeout: '10s', protocol: 'downstream', ...(sourceAddress ? { upstreamBindConfig: { sourceAddress } } : {}) });
}


/**
 * YAML schema of service invocation: `nameResolution` (app id → endpoints) and `invocation` (the
 * internal listener the runtime sends invocations through, and explicit app id → cluster
 * mappings). compile-invocation.ts turns them into clusters, a route configuration and a listener.
 *
 * Both sections are optional, and whether they are written matters: service invocation (its
 * listener, and the runtime gRPC API that starts with it) is on only when the configuration has
 * one of them or lists an app id. With `type: dns` every app id resolves on demand (a dynamic
 * forward proxy cluster); the ids listed in `dns.apps` get their own STRICT_DNS clusters.
 */
import { z } from 'zod';
import { durationMs, describe } from './units.js';
import { int, list, nonEmpty, port, portOrZero } from './schema-common.js';
import { retryPolicy } from './schema-routes.js';
import { APP_ID_RULE, isValidAppId } from './app-id.js';

/** Default port of the internal invocation listener (next to Istio's 15001/15006). */
export const DEFAULT_INVOCATION_PORT = 15007;
export const DEFAULT_DNS_TEMPLATE = '{appId}.{namespace}.svc.cluster.local';

/** Envoy's dns_cache_config defaults: host_ttl 5m, max_hosts 1024. */
export const DEFAULT_DNS_HOST_TTL_MS = 300_000;
export const DEFAULT_DNS_MAX_HOSTS = 1024;

/** `app` or Dapr's `app.namespace` (src/config/app-id.ts). */
export const appId = nonEmpty.superRefine((s, ctx) => {
  if (!isValidAppId(s)) ctx.addIssue({ code: 'custom', message: `invalid app id ${describe(s)}: ${APP_ID_RULE}` });
});

const PLACEHOLDER = /\{([^}]*)\}/g;
const PLACEHOLDERS = new Set(['appId', 'namespace']);

const dnsTemplate = nonEmpty.superRefine((t, ctx) => {
  for (const m of t.matchAll(PLACEHOLDER)) {
    if (!PLACEHOLDERS.has(m[1]!)) ctx.addIssue({ code: 'custom', message: `unknown placeholder '{${m[1]}}' in the template (known: {appId}, {namespace})` });
  }
  if (!t.includes('{appId}')) ctx.addIssue({ code: 'custom', message: "the template must contain '{appId}'" });
});

const nameResolution = z
  .strictObject({
    type: z.enum(['dns', 'static']).default('dns'),
    dns: z
      .strictObject({
        template: dnsTemplate.default(DEFAULT_DNS_TEMPLATE),
        port: port.default(80),
        /** Re-resolution interval of the STRICT_DNS clusters and of the on-demand DNS cache. */
        refreshRate: durationMs.default(5000),
        /** On-demand resolution (app ids not listed anywhere): names unused this long leave the DNS cache. */
        hostTtl: durationMs.pipe(z.number().min(1, { error: 'must be greater than 0' })).default(DEFAULT_DNS_HOST_TTL_MS),
        /** On-demand resolution: at most this many names cached; a new one beyond is refused (503). */
        maxHosts: int(1, 1_000_000, 'a host count').default(DEFAULT_DNS_MAX_HOSTS),
        /** App ids with a STRICT_DNS cluster of their own (resolved through the template). */
        apps: list(appId).default([]),
      })
      .prefault({}),
    static: z
      .strictObject({
        /** Endpoints are checked as a cluster's `endpoints` ("host:port", {address, port, weight}). */
        apps: list(z.strictObject({ appId, endpoints: list(z.unknown()).pipe(z.array(z.unknown()).min(1, { error: 'expected at least one endpoint' })) })).default([]),
      })
      .prefault({}),
  })
  .superRefine((n, ctx) => {
    if (n.type === 'static' && n.dns.apps.length > 0) {
      ctx.addIssue({ code: 'custom', message: "dns.apps is used only with type: dns (this nameResolution is type: static)", path: ['dns', 'apps'] });
    }
  });
export type ParsedNameResolution = z.output<typeof nameResolution>;

const invocation = z.strictObject({
  /** 127.0.0.1 only; 0 = a free port (tests). */
  port: portOrZero.default(DEFAULT_INVOCATION_PORT),
  /** Route timeout of every app id (Dapr's default resiliency timeout is none; 60s bounds a hung app). */
  timeout: durationMs.default(60_000),
  /** Envoy retry policy on every app id's route. */
  retryPolicy: retryPolicy.optional(),
  /** Explicit app id → cluster (of `clusters:`); wins over name resolution. */
  apps: list(z.strictObject({ appId, cluster: nonEmpty, timeout: durationMs.optional(), retryPolicy: retryPolicy.optional() })).default([]),
});
export type ParsedInvocation = z.output<typeof invocation>;

/** undefined when the configuration has no such section (an empty `nameResolution:` is one, with the defaults). */
export const nameResolutionSchema = z.preprocess((v) => (v === null ? {} : v), nameResolution).optional();
export const invocationSchema = z.preprocess((v) => (v === null ? {} : v), invocation).optional();

/** The settings of an absent section. */
export const DEFAULT_NAME_RESOLUTION: ParsedNameResolution = nameResolution.parse({});
export const DEFAULT_INVOCATION: ParsedInvocation = invocation.parse({});

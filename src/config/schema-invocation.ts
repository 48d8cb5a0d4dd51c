/**
 * YAML schema of service invocation: `nameResolution` (app id → endpoints) and `invocation` (the
 * internal listener the runtime sends invocations through, and explicit app id → cluster
 * mappings). compile-invocation.ts turns them into clusters, a route configuration and a listener.
 *
 * App ids are known in advance: a STRICT_DNS cluster per app id cannot be made up for an id seen
 * only at request time, so DNS name resolution lists its app ids (`nameResolution.dns.apps`).
 */
import { z } from 'zod';
import { durationMs, describe } from './units.js';
import { list, nonEmpty, port, portOrZero } from './schema-common.js';
import { retryPolicy } from './schema-routes.js';

/** Default port of the internal invocation listener (next to Istio's 15001/15006). */
export const DEFAULT_INVOCATION_PORT = 15007;
export const DEFAULT_DNS_TEMPLATE = '{appId}.{namespace}.svc.cluster.local';

/**
 * Dapr app ids: letters, digits, '-' and '_'. No dot: Dapr reads `app.namespace` as a namespaced
 * id, and the id is the Host the internal listener routes on.
 */
const APP_ID = /^[A-Za-z0-9]([A-Za-z0-9_-]*[A-Za-z0-9])?$/;
export function isValidAppId(s: string): boolean {
  return APP_ID.test(s);
}

export const appId = nonEmpty.superRefine((s, ctx) => {
  if (!APP_ID.test(s)) ctx.addIssue({ code: 'custom', message: `invalid app id ${describe(s)}: use letters, digits, '-' and '_' (no dots)` });
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
        refreshRate: durationMs.default(5000),
        /** App ids resolved through the template. */
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

export const nameResolutionSchema = nameResolution.prefault({});
export const invocationSchema = invocation.prefault({});

/**
 * FlowControlPolicy documents (Kubernetes style) and the config of the
 * `capa.filters.http.flow_control` filter, which the config compiler inserts at the front of
 * every HTTP listener chain when at least one policy is in force.
 *
 * ```yaml
 * apiVersion: capa.io/v1
 * kind: FlowControlPolicy
 * metadata: { name: orders-read }
 * spec:
 *   match: { hosts: [orders], paths: [{prefix: /api/}], methods: [GET] }
 *   rateLimit: { requestsPerUnit: 100, unit: second, burst: 20, by: header:x-user-id, scope: local }
 *   concurrency: { maxInFlight: 64 }
 *   fault: { delay: { fixed: 100ms, percent: 10 }, abort: { httpStatus: 503, percent: 1 } }
 * ```
 *
 * `rateLimit` takes the fields of envoy.filters.http.local_ratelimit (src/filters/local-ratelimit
 * /config.ts), `fault` those of envoy.filters.http.fault, `circuitBreaker` those of
 * capa.filters.http.circuit_breaker (one breaker per policy and upstream cluster).
 */
import { z } from 'zod';
import { localRateLimitConfigSchema } from '../local-ratelimit/config.js';
import { faultConfigSchema } from '../fault/config.js';
import { circuitBreakerConfigSchema } from '../circuit-breaker/config.js';

export const POLICY_API_VERSION = 'capa.io/v1';
export const POLICY_KIND = 'FlowControlPolicy';

/** DNS-1123 subdomain, as Kubernetes object names. */
const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

const pathMatch = z
  .strictObject({
    prefix: z.string().startsWith('/', 'a path prefix starts with /').optional(),
    exact: z.string().startsWith('/', 'a path starts with /').optional(),
    regex: z
      .string()
      .min(1)
      .superRefine((v, ctx) => {
        try {
          new RegExp(v);
        } catch (e) {
          ctx.addIssue({ code: 'custom', message: `invalid regular expression: ${(e as Error).message}` });
        }
      })
      .optional(),
  })
  .superRefine((p, ctx) => {
    const n = Number(p.prefix !== undefined) + Number(p.exact !== undefined) + Number(p.regex !== undefined);
    if (n !== 1) ctx.addIssue({ code: 'custom', message: 'give exactly one of prefix, exact or regex' });
  });

const METHOD = /^[A-Z]+$/;

const matchSchema = z.strictObject({
  /** Host names (port ignored, case-insensitive): exact, `*`, `*.suffix` or `prefix*`. Empty: any host. */
  hosts: z.array(z.string().min(1)).default([]),
  /** Any of them matches (query string ignored). Empty: any path. */
  paths: z.array(pathMatch).default([]),
  /** Upper-case HTTP methods. Empty: any method. */
  methods: z.array(z.string().regex(METHOD, 'expected an upper-case HTTP method such as GET')).default([]),
});

export const policySpecSchema = z
  .strictObject({
    match: matchSchema.prefault({}),
    rateLimit: localRateLimitConfigSchema.optional(),
    concurrency: z.strictObject({ maxInFlight: z.number().int().min(1) }).optional(),
    circuitBreaker: circuitBreakerConfigSchema.optional(),
    fault: faultConfigSchema.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.rateLimit === undefined && s.concurrency === undefined && s.fault === undefined && s.circuitBreaker === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'a policy needs at least one of rateLimit, concurrency, circuitBreaker, fault' });
    }
  });

export type PolicySpec = z.output<typeof policySpecSchema>;
export type PolicyMatch = PolicySpec['match'];

export const policyDocumentSchema = z.strictObject({
  apiVersion: z.literal(POLICY_API_VERSION, { error: `expected apiVersion ${POLICY_API_VERSION}` }),
  kind: z.literal(POLICY_KIND, { error: `expected kind ${POLICY_KIND}` }),
  metadata: z.looseObject({
    name: z.string().regex(NAME, 'expected a lower-case DNS name (a-z, 0-9, -, .)').max(253),
  }),
  spec: policySpecSchema,
});

/** One policy as the Snapshot carries it: plain data, the spec as written (re-parsed by the filter). */
export interface PolicyEntry {
  readonly name: string;
  /** File (or `file#flowControl.policies[i]`) the document came from. */
  readonly source: string;
  readonly spec: unknown;
  /** Hash of the spec: limiters are keyed by name + hash, so unchanged rules keep their counters. */
  readonly hash: string;
  /** The document's current text is invalid; this is the last good version, kept in force. */
  readonly stale: boolean;
}

export interface FlowControlConfig {
  readonly policies: readonly PolicyEntry[];
}

export interface ParsedPolicy {
  readonly name: string;
  readonly hash: string;
  readonly spec: PolicySpec;
}

const policyEntry = z.object({ name: z.string(), source: z.string(), spec: z.unknown(), hash: z.string(), stale: z.boolean().default(false) });

/** The filter's config (written by the compiler, never by hand): the policies in document order. */
export function parseFlowControlConfig(raw: unknown): ParsedPolicy[] {
  const c = z.strictObject({ policies: z.array(policyEntry) }).parse(raw ?? {});
  return c.policies.map((p, i) => {
    const r = policySpecSchema.safeParse(p.spec);
    if (!r.success) throw new z.ZodError(r.error.issues.map((iss) => ({ ...iss, path: ['policies', i, 'spec', ...iss.path] })));
    return { name: p.name, hash: p.hash, spec: r.data };
  });
}

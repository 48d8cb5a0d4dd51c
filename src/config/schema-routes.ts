/**
 * YAML schema of route configurations (Envoy RouteConfiguration v3, camelCase). The output is
 * already the Snapshot's RouteConfigSpec: names defaulted, Envoy-shaped alternatives folded into
 * one form, durations in ms. References to clusters and filters are checked by compile.ts.
 */
import { z } from 'zod';
import { durationMs } from './units.js';
import {
  bool,
  byType,
  exactlyOne,
  headersToAdd,
  headersToRemove,
  int,
  list,
  nonEmpty,
  notBoth,
  port,
  regex,
  text,
  typedPerFilterConfig,
} from './schema-common.js';
import type {
  ForwardActionSpec,
  HashPolicySpec,
  HeaderMatcherSpec,
  QueryParameterMatcherSpec,
  RedirectActionSpec,
  DirectResponseActionSpec,
  RetryPolicySpec,
  RouteActionSpec,
  RouteConfigSpec,
  RouteMatchSpec,
  RouteSpec,
  VirtualHostSpec,
} from './snapshot.js';

/** Envoy default route timeout. */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;

/** `safeRegex: "^/v1/"` or Envoy's `safeRegex: {regex: "^/v1/"}`. */
const safeRegex = byType('a regex string or {regex: ...}', {
  string: regex,
  object: z.strictObject({ regex, googleRe2: z.unknown().optional() }).transform((r) => r.regex),
});

// === Matchers ===

const STRING_MATCH_KEYS = ['exact', 'prefix', 'suffix', 'contains', 'safeRegex'] as const;

const stringMatch = z.strictObject({
  exact: text.optional(),
  prefix: text.optional(),
  suffix: text.optional(),
  contains: text.optional(),
  safeRegex: safeRegex.optional(),
});
type StringMatch = z.output<typeof stringMatch>;

function pickStringMatch(m: StringMatch): StringMatch {
  const out: Record<string, string> = {};
  for (const k of STRING_MATCH_KEYS) if (m[k] !== undefined) out[k] = m[k];
  return out;
}

const headerMatcher = z
  .strictObject({
    name: nonEmpty.transform((s) => s.toLowerCase()),
    ...stringMatch.shape,
    present: bool.optional(),
    invertMatch: bool.default(false),
    stringMatch: stringMatch.optional(),
    presentMatch: bool.optional(),
  })
  .transform((h, ctx): HeaderMatcherSpec => {
    const forms = [...STRING_MATCH_KEYS, 'present', 'stringMatch', 'presentMatch'].filter((k) => (h as Record<string, unknown>)[k] !== undefined);
    if (forms.length > 1) {
      ctx.addIssue({ code: 'custom', message: `only one matcher may be set, got ${forms.map((k) => `'${k}'`).join(' and ')}`, path: [forms[1]!] });
      return z.NEVER;
    }
    if (h.stringMatch && exactlyOne(h.stringMatch, STRING_MATCH_KEYS, ctx, ['stringMatch']) === undefined) return z.NEVER;
    const present = h.present ?? h.presentMatch;
    const m = h.stringMatch ? pickStringMatch(h.stringMatch) : pickStringMatch(h);
    // No matcher at all: Envoy treats the header as required to be present.
    const presence = Object.keys(m).length === 0 ? { present: present ?? true } : {};
    return { name: h.name, ...m, ...presence, invert: h.invertMatch };
  });

const queryParameterMatcher = z
  .strictObject({
    name: nonEmpty,
    exact: text.optional(),
    prefix: text.optional(),
    safeRegex: safeRegex.optional(),
    present: bool.optional(),
    stringMatch: stringMatch.optional(),
    presentMatch: bool.optional(),
  })
  .transform((q, ctx): QueryParameterMatcherSpec => {
    const forms = ['exact', 'prefix', 'safeRegex', 'present', 'stringMatch', 'presentMatch'].filter((k) => (q as Record<string, unknown>)[k] !== undefined);
    if (forms.length > 1) {
      ctx.addIssue({ code: 'custom', message: `only one matcher may be set, got ${forms.map((k) => `'${k}'`).join(' and ')}`, path: [forms[1]!] });
      return z.NEVER;
    }
    if (q.stringMatch) {
      const k = exactlyOne(q.stringMatch, ['exact', 'prefix', 'safeRegex'], ctx, ['stringMatch']);
      if (k === undefined) return z.NEVER;
      return { name: q.name, [k]: q.stringMatch[k as 'exact'] };
    }
    const m: Record<string, string> = {};
    for (const k of ['exact', 'prefix', 'safeRegex'] as const) if (q[k] !== undefined) m[k] = q[k];
    const present = q.present ?? q.presentMatch;
    return { name: q.name, ...m, ...(Object.keys(m).length === 0 ? { present: present ?? true } : {}) };
  });

const routeMatch = z
  .strictObject({
    prefix: text.optional(),
    path: text.optional(),
    safeRegex: safeRegex.optional(),
    caseSensitive: bool.default(true),
    methods: list(nonEmpty.transform((s) => s.toUpperCase())).default([]),
    headers: list(headerMatcher).default([]),
    queryParameters: list(queryParameterMatcher).default([]),
  })
  .transform((m, ctx): RouteMatchSpec => {
    const k = exactlyOne(m, ['prefix', 'path', 'safeRegex'], ctx);
    if (k === undefined) return z.NEVER;
    return {
      [k]: m[k as 'prefix'],
      caseSensitive: m.caseSensitive,
      methods: m.methods,
      headers: m.headers,
      queryParameters: m.queryParameters,
    } as RouteMatchSpec;
  });

// === Actions ===

const RETRY_ON = new Set([
  '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited', 'retriable-4xx',
  'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
  'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
]);

const retryOnItem = nonEmpty.transform((s) => s.trim()).superRefine((s, ctx) => {
  if (!RETRY_ON.has(s)) ctx.addIssue({ code: 'custom', message: `unknown retryOn condition '${s}' (known: ${[...RETRY_ON].join(', ')})` });
});

export const retryPolicy = z
  .strictObject({
    retryOn: z.preprocess(
      (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v),
      z.array(retryOnItem, { error: 'expected a comma-separated string or a list of retry conditions' }).min(1, { error: 'expected at least one retry condition' }),
    ),
    numRetries: int(0).default(1),
    perTryTimeout: durationMs.default(0),
    retriableStatusCodes: list(int(100, 599, 'an HTTP status')).default([]),
    retryBackOff: z.strictObject({ baseInterval: durationMs.default(25), maxInterval: durationMs.optional() }).optional(),
  })
  .transform((r, ctx): RetryPolicySpec => {
    const base = r.retryBackOff?.baseInterval ?? 25;
    const max = r.retryBackOff?.maxInterval ?? base * 10;
    if (max < base) {
      ctx.addIssue({ code: 'custom', message: 'maxInterval must not be smaller than baseInterval', path: ['retryBackOff', 'maxInterval'] });
      return z.NEVER;
    }
    return {
      retryOn: r.retryOn,
      numRetries: r.numRetries,
      perTryTimeoutMs: r.perTryTimeout,
      retriableStatusCodes: r.retriableStatusCodes,
      backoffBaseMs: base,
      backoffMaxMs: max,
    };
  });

const hashPolicy = z
  .strictObject({
    header: z.strictObject({ headerName: nonEmpty.transform((s) => s.toLowerCase()) }).optional(),
    cookie: z.strictObject({ name: nonEmpty }).optional(),
    connectionProperties: z.strictObject({ sourceIp: z.literal(true, { error: 'expected sourceIp: true' }) }).optional(),
    queryParameter: z.strictObject({ name: nonEmpty }).optional(),
    terminal: bool.default(false),
  })
  .transform((h, ctx): HashPolicySpec => {
    const k = exactlyOne(h, ['header', 'cookie', 'connectionProperties', 'queryParameter'], ctx);
    const terminal = h.terminal;
    if (k === 'header') return { kind: 'header', name: h.header!.headerName, terminal };
    if (k === 'cookie') return { kind: 'cookie', name: h.cookie!.name, terminal };
    if (k === 'queryParameter') return { kind: 'queryParameter', name: h.queryParameter!.name, terminal };
    if (k === 'connectionProperties') return { kind: 'sourceIp', terminal };
    return z.NEVER;
  });

const forwardAction = z
  .strictObject({
    cluster: nonEmpty.optional(),
    weightedClusters: z
      .strictObject({
        clusters: list(z.strictObject({ name: nonEmpty, weight: int(0, 0xffffffff, 'a weight') })).pipe(
          z.array(z.any()).min(1, { error: 'expected at least one cluster' }),
        ),
      })
      .optional(),
    timeout: durationMs.default(DEFAULT_ROUTE_TIMEOUT_MS),
    idleTimeout: durationMs.default(0),
    prefixRewrite: text.optional(),
    regexRewrite: z.strictObject({ pattern: safeRegex, substitution: text }).optional(),
    hostRewriteLiteral: nonEmpty.optional(),
    autoHostRewrite: bool.default(false),
    retryPolicy: retryPolicy.optional(),
    hashPolicy: list(hashPolicy).default([]),
    /** Envoy max_stream_duration: with grpcTimeoutHeaderMax set, a gRPC request's `grpc-timeout` is its deadline. */
    maxStreamDuration: z.strictObject({ grpcTimeoutHeaderMax: durationMs.optional(), grpcTimeoutHeaderOffset: durationMs.default(0) }).optional(),
  })
  .transform((r, ctx): ForwardActionSpec => {
    const which = exactlyOne(r, ['cluster', 'weightedClusters'], ctx);
    if (which === undefined) return z.NEVER;
    if (!notBoth(r, 'prefixRewrite', 'regexRewrite', ctx)) return z.NEVER;
    if (r.autoHostRewrite && r.hostRewriteLiteral !== undefined) {
      ctx.addIssue({ code: 'custom', message: "'hostRewriteLiteral' and 'autoHostRewrite: true' cannot both be set", path: ['autoHostRewrite'] });
      return z.NEVER;
    }
    const weighted = (r.weightedClusters?.clusters ?? []) as { name: string; weight: number }[];
    if (r.weightedClusters && weighted.reduce((a, c) => a + c.weight, 0) === 0) {
      ctx.addIssue({ code: 'custom', message: 'the total weight of weightedClusters must be greater than 0', path: ['weightedClusters'] });
      return z.NEVER;
    }
    return {
      kind: 'route',
      cluster: r.cluster ?? '',
      weightedClusters: weighted.map((c) => ({ name: c.name, weight: c.weight })),
      ...(r.prefixRewrite !== undefined ? { prefixRewrite: r.prefixRewrite } : {}),
      ...(r.regexRewrite ? { regexRewrite: r.regexRewrite } : {}),
      ...(r.hostRewriteLiteral !== undefined ? { hostRewriteLiteral: r.hostRewriteLiteral } : {}),
      autoHostRewrite: r.autoHostRewrite,
      timeoutMs: r.timeout,
      idleTimeoutMs: r.idleTimeout,
      retryPolicy: r.retryPolicy ?? null,
      hashPolicy: r.hashPolicy,
      grpcTimeoutHeaderMaxMs: r.maxStreamDuration?.grpcTimeoutHeaderMax ?? -1,
      grpcTimeoutHeaderOffsetMs: r.maxStreamDuration?.grpcTimeoutHeaderOffset ?? 0,
    };
  });

const REDIRECT_CODES: Readonly<Record<string, number>> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};
const redirectCode = z.unknown().transform((v, ctx): number => {
  const n = typeof v === 'string' ? (REDIRECT_CODES[v] ?? (/^\d+$/.test(v) ? Number(v) : NaN)) : v;
  if (typeof n === 'number' && Object.values(REDIRECT_CODES).includes(n)) return n;
  ctx.addIssue({ code: 'custom', message: `expected one of ${Object.keys(REDIRECT_CODES).join(', ')} or 301, 302, 303, 307, 308` });
  return z.NEVER;
});

const redirectAction = z
  .strictObject({
    schemeRedirect: nonEmpty.optional(),
    httpsRedirect: bool.optional(),
    hostRedirect: nonEmpty.optional(),
    portRedirect: port.optional(),
    pathRedirect: text.optional(),
    prefixRewrite: text.optional(),
    responseCode: redirectCode.default(301),
    stripQuery: bool.default(false),
  })
  .transform((r, ctx): RedirectActionSpec => {
    if (!notBoth(r, 'schemeRedirect', 'httpsRedirect', ctx) || !notBoth(r, 'pathRedirect', 'prefixRewrite', ctx)) return z.NEVER;
    const scheme = r.schemeRedirect ?? (r.httpsRedirect ? 'https' : undefined);
    return {
      kind: 'redirect',
      ...(scheme !== undefined ? { schemeRedirect: scheme } : {}),
      ...(r.hostRedirect !== undefined ? { hostRedirect: r.hostRedirect } : {}),
      ...(r.portRedirect !== undefined ? { portRedirect: r.portRedirect } : {}),
      ...(r.pathRedirect !== undefined ? { pathRedirect: r.pathRedirect } : {}),
      ...(r.prefixRewrite !== undefined ? { prefixRewrite: r.prefixRewrite } : {}),
      responseCode: r.responseCode,
      stripQuery: r.stripQuery,
    };
  });

const directResponseAction = z
  .strictObject({
    status: int(100, 599, 'an HTTP status'),
    body: byType('a string or {inlineString: ...}', {
      string: text,
      number: text,
      object: z.strictObject({ inlineString: text }).transform((b) => b.inlineString),
    }).optional(),
  })
  .transform((d): DirectResponseActionSpec => ({ kind: 'directResponse', status: d.status, body: d.body ?? '' }));

// === Routes, virtual hosts, route configurations ===

const route = z
  .strictObject({
    name: nonEmpty.optional(),
    match: routeMatch,
    route: forwardAction.optional(),
    redirect: redirectAction.optional(),
    directResponse: directResponseAction.optional(),
    requestHeadersToAdd: headersToAdd,
    requestHeadersToRemove: headersToRemove,
    responseHeadersToAdd: headersToAdd,
    responseHeadersToRemove: headersToRemove,
    typedPerFilterConfig,
  })
  .transform((r, ctx) => {
    const k = exactlyOne(r, ['route', 'redirect', 'directResponse'], ctx);
    if (k === undefined) return z.NEVER;
    const action = r[k as 'route'] as RouteActionSpec;
    const { route: _r, redirect: _d, directResponse: _x, ...rest } = r;
    return { ...rest, action };
  });

const DOMAIN = /^(\*|\*[^*]+|[^*]+\*|[^*]+)$/;

const virtualHost = z
  .strictObject({
    name: nonEmpty,
    domains: list(
      nonEmpty.transform((s) => s.toLowerCase()).superRefine((d, ctx) => {
        if (!DOMAIN.test(d)) ctx.addIssue({ code: 'custom', message: `invalid domain '${d}': a '*' may only stand alone, start ('*.example.com') or end ('example.*') it` });
      }),
    )
      .pipe(z.array(z.string()).min(1, { error: 'expected at least one domain' }))
      .default(['*']),
    routes: list(route).default([]),
    retryPolicy: retryPolicy.optional(),
    requestHeadersToAdd: headersToAdd,
    requestHeadersToRemove: headersToRemove,
    responseHeadersToAdd: headersToAdd,
    responseHeadersToRemove: headersToRemove,
    typedPerFilterConfig,
  })
  .transform((v): VirtualHostSpec => {
    const retry = v.retryPolicy ?? null;
    const routes = v.routes.map((r, i): RouteSpec => {
      const action = r.action.kind === 'route' && r.action.retryPolicy === null && retry ? { ...r.action, retryPolicy: retry } : r.action;
      return { ...r, name: r.name ?? `${v.name}/${i}`, action };
    });
    return { ...v, routes, retryPolicy: retry };
  });

const routeConfigShape = {
  virtualHosts: list(virtualHost).default([]),
  requestHeadersToAdd: headersToAdd,
  requestHeadersToRemove: headersToRemove,
  responseHeadersToAdd: headersToAdd,
  responseHeadersToRemove: headersToRemove,
};

function checkVirtualHosts(rc: { virtualHosts: readonly VirtualHostSpec[] }, ctx: z.RefinementCtx): void {
  const names = new Set<string>();
  const domains = new Map<string, string>();
  rc.virtualHosts.forEach((vh, i) => {
    if (names.has(vh.name)) ctx.addIssue({ code: 'custom', message: `duplicate virtual host name '${vh.name}'`, path: ['virtualHosts', i, 'name'] });
    names.add(vh.name);
    vh.domains.forEach((d, j) => {
      const other = domains.get(d);
      if (other !== undefined) ctx.addIssue({ code: 'custom', message: `domain '${d}' is already used by virtual host '${other}'`, path: ['virtualHosts', i, 'domains', j] });
      else domains.set(d, vh.name);
    });
  });
}

/** An inline route configuration (on a listener); compile.ts names it after the listener. */
export const inlineRouteConfig = z.strictObject(routeConfigShape).superRefine(checkVirtualHosts);

/** An entry of the top-level `routes:` list. */
export const namedRouteConfig = z
  .strictObject({ name: nonEmpty, ...routeConfigShape })
  .superRefine(checkVirtualHosts)
  .transform((rc): RouteConfigSpec => rc);

/**
 * The zod schema of the user's YAML (camelCase, shaped after Envoy v3 JSON). Objects are strict:
 * an unknown key is an error. The output, ParsedConfig, has units converted, defaults filled and
 * Envoy-shaped alternatives folded; compile.ts adds what needs the whole file or the filter
 * registry (references, capture listeners, filter configs) and produces the Snapshot.
 *
 * Arrays keep their input order and index, so compile.ts can point errors at the YAML.
 */
import { z } from 'zod';
import { durationMs, sizeBytes } from './units.js';
import { bool, int, ipAddress, list, nonEmpty, port, portOrZero, text } from './schema-common.js';
import { clusterSchema } from './schema-clusters.js';
import { tcpCopyConfigSchema } from '../filters/tcp-copy/config.js';
import { inlineRouteConfig, namedRouteConfig } from './schema-routes.js';
import { componentsSchema } from './schema-components.js';
import { invocationSchema, nameResolutionSchema } from './schema-invocation.js';

/** One HTTP filter of a listener's chain; `config` is checked by the filter's own factory. */
const httpFilter = z
  .strictObject({
    name: nonEmpty,
    config: z.unknown().optional(),
    typedConfig: z.unknown().optional(),
    disabled: bool.default(false),
  })
  .transform((f, ctx) => {
    if (f.config !== undefined && f.typedConfig !== undefined) {
      ctx.addIssue({ code: 'custom', message: "'config' and 'typedConfig' cannot both be set", path: ['typedConfig'] });
      return z.NEVER;
    }
    const configKey: 'config' | 'typedConfig' = f.typedConfig !== undefined ? 'typedConfig' : 'config';
    return { name: f.name, config: f.config ?? f.typedConfig, configKey, disabled: f.disabled };
  });
export type ParsedHttpFilter = z.output<typeof httpFilter>;

export const listenerSchema = z
  .strictObject({
    name: nonEmpty,
    address: ipAddress.default('0.0.0.0'),
    port: portOrZero,
    protocol: z.enum(['http', 'tcp', 'auto']).default('http'),
    routeConfig: nonEmpty.optional(),
    routes: inlineRouteConfig.optional(),
    tcpCluster: nonEmpty.optional(),
    trafficDirection: z.enum(['INBOUND', 'OUTBOUND', 'UNSPECIFIED']).default('UNSPECIFIED'),
    httpFilters: list(httpFilter).optional(),
    requestTimeout: durationMs.default(0),
    requestHeadersTimeout: durationMs.default(10_000),
    idleTimeout: durationMs.default(3_600_000),
    maxRequestHeaders: sizeBytes.default(60 * 1024),
    perRequestBufferLimit: sizeBytes.default(1024 * 1024),
    useRemoteAddress: bool.default(true),
    generateRequestId: bool.default(true),
    serverName: text.default('capa-runtime'),
  })
  .superRefine((l, ctx) => {
    if (l.routeConfig !== undefined && l.routes !== undefined) {
      ctx.addIssue({ code: 'custom', message: "use either 'routeConfig' (a name from 'routes:') or inline 'routes', not both", path: ['routes'] });
    }
    if (l.protocol === 'tcp') {
      if (l.tcpCluster === undefined) ctx.addIssue({ code: 'custom', message: "a tcp listener needs 'tcpCluster'", path: ['protocol'] });
      for (const k of ['routeConfig', 'routes', 'httpFilters'] as const) {
        if (l[k] !== undefined) ctx.addIssue({ code: 'custom', message: `'${k}' applies to http listeners only (protocol is tcp)`, path: [k] });
      }
    } else if (l.routeConfig === undefined && l.routes === undefined) {
      ctx.addIssue({ code: 'custom', message: `an ${l.protocol} listener needs 'routeConfig' or inline 'routes'`, path: ['name'] });
    }
  });
export type ParsedListener = z.output<typeof listenerSchema>;

const sidecar = z.strictObject({
  port: portOrZero.default(3500),
  grpcPort: portOrZero.default(50001),
  metricsPort: portOrZero.default(9090),
  adminPort: portOrZero.default(15000),
  adminAddress: ipAddress.default('127.0.0.1'),
  prometheusPort: portOrZero.default(15090),
  readinessPort: portOrZero.default(15021),
  traffic: z
    .strictObject({
      interception: z
        .strictObject({ enabled: bool.default(false), outboundPort: port.default(15001), inboundPort: port.default(15006) })
        .prefault({}),
    })
    .prefault({}),
});

const node = z.strictObject({
  id: nonEmpty.optional(),
  cluster: nonEmpty.optional(),
  namespace: nonEmpty.optional(),
  workloadName: nonEmpty.optional(),
  canonicalService: nonEmpty.optional(),
  canonicalRevision: nonEmpty.optional(),
  meshId: nonEmpty.optional(),
});

export const configSchema = z
  .strictObject({
    mode: z.enum(['sidecar', 'proxyless']).default('sidecar'),
    node: node.prefault({}),
    sidecar: sidecar.prefault({}),
    app: z
      .strictObject({
        id: nonEmpty.optional(),
        port: portOrZero.default(0),
        address: text.default('127.0.0.1'),
        /** How the runtime calls the app back (pub/sub delivery, configuration updates): Dapr's --app-protocol. */
        protocol: z.enum(['http', 'grpc']).default('http'),
      })
      .prefault({}),
    concurrency: int(1, 1024, 'a worker count').default(1),
    drainTime: durationMs.default(45_000),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
    accessLog: z.strictObject({ path: text.default(''), format: z.enum(['json', 'text']).default('json') }).prefault({}),
    tcpCopy: tcpCopyConfigSchema.prefault({}),
    /** FlowControlPolicy documents (each checked on its own, see policies.ts) and watched directories. */
    flowControl: z.strictObject({ policies: list(z.unknown()).default([]), policyDirs: list(nonEmpty).default([]) }).prefault({}),
    listeners: list(listenerSchema).default([]),
    routes: list(namedRouteConfig).default([]),
    clusters: list(clusterSchema).default([]),
    /** Runtime API backends (Dapr components); checked against the registry in compile-components.ts. */
    components: componentsSchema,
    /** Service invocation: app id → endpoints, and the internal listener (schema-invocation.ts). */
    nameResolution: nameResolutionSchema,
    invocation: invocationSchema,
  })
  .superRefine((c, ctx) => {
    if (c.mode === 'proxyless' && c.sidecar.traffic.interception.enabled) {
      ctx.addIssue({ code: 'custom', message: 'traffic interception needs mode: sidecar', path: ['sidecar', 'traffic', 'interception', 'enabled'] });
    }
  });

/** The validated YAML, input of compileConfig. */
export type ParsedConfig = z.output<typeof configSchema>;

/**
 * Config of the Istio stats filter (Istio's `stats.PluginConfig`, kept to what this proxy acts on).
 * Istio's snake_case spelling is accepted alongside camelCase, as xDS JSON carries it.
 */
import { z } from 'zod';

export const istioStatsConfigSchema = z
  .strictObject({
    /** Do not use :authority as destination_service when the cluster names no service. */
    disableHostHeaderFallback: z.boolean().optional(),
    disable_host_header_fallback: z.boolean().optional(),
  })
  .transform((c) => ({
    disableHostHeaderFallback: c.disableHostHeaderFallback ?? c.disable_host_header_fallback ?? false,
  }));

export type IstioStatsConfig = Readonly<z.output<typeof istioStatsConfigSchema>>;

/** Per-route: only switching the filter off. */
export const istioStatsPerRouteSchema = z.strictObject({ disabled: z.boolean() });

export type IstioStatsPerRoute = Readonly<z.output<typeof istioStatsPerRouteSchema>>;

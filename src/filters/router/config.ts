import { z } from 'zod';

/** envoy.extensions.filters.http.router.v3.Router, the fields we honour. */
export const routerConfigSchema = z
  .object({
    /** Envoy suppress_envoy_headers: do not add x-envoy-upstream-service-time. */
    suppressEnvoyHeaders: z.boolean().optional(),
    startChildSpan: z.boolean().optional(),
    '@type': z.string().optional(),
  })
  .strict();

export type RouterConfig = z.infer<typeof routerConfigSchema>;

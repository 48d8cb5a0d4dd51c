import type { BuiltFilter, FilterContext, HttpFilter, HttpFilterFactory } from '../types.js';
import { faultConfigSchema, type FaultConfig } from './config.js';
import { FaultFilter } from './filter.js';
import { faultMetrics } from './metrics.js';

export const FAULT_FILTER_NAME = 'envoy.filters.http.fault';
export const FAULT_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';

/** Per-route overrides use the same schema and replace the listener's config for that route. */
export const faultFactory: HttpFilterFactory<FaultConfig, FaultConfig> = {
  name: FAULT_FILTER_NAME,
  typeUrl: FAULT_TYPE_URL,
  aliases: ['envoy.fault', 'fault'],
  parseConfig: (raw) => Object.freeze(faultConfigSchema.parse(raw ?? {})),
  parsePerRoute: (raw) => Object.freeze(faultConfigSchema.parse(raw ?? {})),

  build(config: FaultConfig, ctx: FilterContext): BuiltFilter<FaultConfig> {
    const m = faultMetrics(ctx.registry);
    const delays = m.delays.labels(ctx.listenerName);
    const aborts = m.aborts.labels(ctx.listenerName);
    const active = { n: 0 };
    const make = (cfg: FaultConfig): (() => HttpFilter) | null => {
      // A fault filter with neither delay nor abort does nothing: leave it off the chain.
      if (cfg.delay === null && cfg.abort === null) return null;
      const filter = new FaultFilter({ cfg, delays, aborts, active, random: Math.random });
      return () => filter;
    };
    const listenerLevel = make(config);
    return { forRoute: (perRoute) => (perRoute === undefined ? listenerLevel : make(perRoute)) };
  },
};

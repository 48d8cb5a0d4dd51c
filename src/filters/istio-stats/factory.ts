import { IstioMetrics } from '../../observability/metrics.js';
import type { BuiltFilter, FilterContext, HttpFilter, HttpFilterFactory } from '../types.js';
import { type IstioStatsConfig, istioStatsConfigSchema, type IstioStatsPerRoute, istioStatsPerRouteSchema } from './config.js';
import { IstioStatsFilter } from './filter.js';

export const ISTIO_STATS_FILTER_NAME = 'istio.stats';
export const ISTIO_STATS_TYPE_URL = 'type.googleapis.com/stats.PluginConfig';

export const istioStatsFactory: HttpFilterFactory<IstioStatsConfig, IstioStatsPerRoute> = {
  name: ISTIO_STATS_FILTER_NAME,
  typeUrl: ISTIO_STATS_TYPE_URL,
  aliases: ['envoy.filters.http.istio_stats'],

  parseConfig(raw: unknown): IstioStatsConfig {
    return Object.freeze(istioStatsConfigSchema.parse(raw ?? {}));
  },

  parsePerRoute(raw: unknown): IstioStatsPerRoute {
    return Object.freeze(istioStatsPerRouteSchema.parse(raw));
  },

  build(config: IstioStatsConfig, ctx: FilterContext): BuiltFilter<IstioStatsPerRoute> {
    const filter = new IstioStatsFilter(IstioMetrics.for(ctx.registry, ctx.node), !config.disableHostHeaderFallback);
    const create = (): HttpFilter => filter;
    return {
      forRoute: (perRoute) => (perRoute?.disabled ? null : create),
    };
  },
};

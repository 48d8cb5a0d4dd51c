export { istioStatsConfigSchema, istioStatsPerRouteSchema, type IstioStatsConfig, type IstioStatsPerRoute } from './config.js';
export { ISTIO_STATS_FILTER_NAME, ISTIO_STATS_TYPE_URL, istioStatsFactory } from './factory.js';
export { IstioStatsFilter } from './filter.js';

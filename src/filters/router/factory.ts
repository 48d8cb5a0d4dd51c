/**
 * envoy.filters.http.router. It is always the last filter of a chain, and the HTTP connection
 * manager forwards once every other filter let the request through (src/proxy/http/router.ts),
 * so its per-request object has no hooks and costs nothing.
 */
import type { HttpFilterFactory } from '../types.js';
import { ROUTER_FILTER_NAME } from '../types.js';
import { routerConfigSchema, type RouterConfig } from './config.js';

export const routerFilter: HttpFilterFactory<RouterConfig> = {
  name: ROUTER_FILTER_NAME,
  typeUrl: 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
  aliases: ['envoy.router', 'router'],
  parseConfig: (raw) => routerConfigSchema.parse(raw ?? {}),
  build: () => ({ forRoute: () => null }),
};

import type { BuiltFilter, FilterContext, HttpFilter, HttpFilterFactory } from '../types.js';
import { type AccessLogConfig, accessLogConfigSchema } from './config.js';
import { AccessLogFilter } from './filter.js';
import { formatterFor } from './format.js';
import { acquireAccessLogWriter } from './writer.js';

export const ACCESS_LOG_FILTER_NAME = 'capa.filters.http.access_log';
export const ACCESS_LOG_TYPE_URL = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

const OFF: BuiltFilter = { forRoute: () => null };

export const accessLogFactory: HttpFilterFactory<AccessLogConfig> = {
  name: ACCESS_LOG_FILTER_NAME,
  typeUrl: ACCESS_LOG_TYPE_URL,
  aliases: ['envoy.access_loggers.file'],

  parseConfig(raw: unknown): AccessLogConfig {
    return Object.freeze(accessLogConfigSchema.parse(raw ?? {}));
  },

  build(config: AccessLogConfig, ctx: FilterContext): BuiltFilter {
    const path = config.path ?? ctx.accessLog.path;
    if (path === '') return OFF;
    const writer = acquireAccessLogWriter(path, ctx.logger);
    const filter = new AccessLogFilter(writer, formatterFor(config.format ?? ctx.accessLog.format));
    const create = (): HttpFilter => filter;
    return {
      forRoute: () => create,
      close: () => writer.release(),
    };
  },
};

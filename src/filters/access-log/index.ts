export { accessLogConfigSchema, type AccessLogConfig } from './config.js';
export { ACCESS_LOG_FILTER_NAME, ACCESS_LOG_TYPE_URL, accessLogFactory } from './factory.js';
export { AccessLogFilter } from './filter.js';
export { type AccessLogFormat, formatJson, formatterFor, formatText, JSON_ACCESS_LOG_FIELDS } from './format.js';
export { acquireAccessLogWriter, type AccessLogWriter, flushAccessLogs } from './writer.js';

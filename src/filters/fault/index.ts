export { faultFactory, FAULT_FILTER_NAME, FAULT_TYPE_URL } from './factory.js';
export { faultConfigSchema, FAULT_HEADERS, type FaultConfig } from './config.js';
export { FaultFilter } from './filter.js';

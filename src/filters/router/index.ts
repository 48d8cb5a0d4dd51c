export { routerFilter } from './factory.js';
export { routerConfigSchema, type RouterConfig } from './config.js';

export { tracingFactory, TRACING_FILTER_NAME, TRACING_TYPE_URL } from './factory.js';
export { tracingConfigSchema, PROPAGATIONS, type Propagation, type TracingConfig } from './config.js';
export { TracingFilter, shouldSample, type TracingShared } from './filter.js';
export { Propagator } from './propagation.js';
export { acquireBackend, flushTracing, type TracingBackend } from './backend.js';

export { createLogger, isLogLevel, LOG_LEVELS, setLogLevel, type LoggerOptions, type ProcessLogLevel } from './logger.js';
export {
  createMetricsRegistry,
  IstioMetrics,
  ISTIO_DURATION_BUCKETS_MS,
  ISTIO_HTTP_LABELS,
  ISTIO_SIZE_BUCKETS_BYTES,
  ISTIO_TCP_LABELS,
} from './metrics.js';
export { CounterChild, HistogramChild, LabelledCounter, LabelledHistogram, type Labels, type MetricSnapshot, type Sample } from './labelled-metrics.js';
export { hostOfAuthority, serviceFromCluster, serviceFromHost, type ServiceLabels } from './istio-service.js';

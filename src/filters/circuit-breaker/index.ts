export { circuitBreakerFactory, CIRCUIT_BREAKER_FILTER_NAME, CIRCUIT_BREAKER_TYPE_URL } from './factory.js';
export { circuitBreakerConfigSchema, parseCircuitBreakerConfig, CIRCUIT_HEADER, type CircuitBreakerConfig, type BreakerSettings } from './config.js';
export { Breaker, acquireBreaker, CIRCUIT_CLOSED, CIRCUIT_OPEN, CIRCUIT_HALF_OPEN, type Settle } from './breaker.js';
export { CircuitBreakerFilter, isFailure } from './filter.js';

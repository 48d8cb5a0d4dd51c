export { localRateLimitFactory, LOCAL_RATELIMIT_FILTER_NAME, LOCAL_RATELIMIT_TYPE_URL } from './factory.js';
export { localRateLimitConfigSchema, parseLocalRateLimitConfig, RATELIMIT_HEADERS, type LocalRateLimitConfig, type KeySpec, type RateSettings } from './config.js';
export { keyExtractor, perRouteKey, MAX_KEY_VALUE } from './key.js';
export { LocalRateLimitFilter, type RateLimitShared } from './filter.js';
export { acquireLimiter, limiterPrefix, type Limiter, type LimiterLease } from './limiter.js';
export { setupRateLimiterPrimary } from './cluster.js';

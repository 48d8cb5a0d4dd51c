export {
  Host,
  HostSet,
  hostKey,
  hostsFromAssignment,
  HEALTH_FLAG_ACTIVE_HC_TIMEOUT,
  HEALTH_FLAG_EDS_STATUS_DRAINING,
  HEALTH_FLAG_FAILED_ACTIVE_HC,
  HEALTH_FLAG_FAILED_EDS_HEALTH,
} from './host.js';
export type { EndpointHealthStatus, HostInit, HostStats, Locality } from './host.js';
export { computeHash, cookieValue, hashString, mix32, queryParamValue } from './hash-policy.js';
export type { HashableRequest } from './hash-policy.js';
export { HealthChecker, HEALTH_CHECK_USER_AGENT } from './health-check.js';
export type { HealthCheckerOptions, HealthCheckStats } from './health-check.js';
export { DnsResolver, lookupAddresses } from './dns.js';
export type { DnsLookup, DnsLookupFamily, DnsResolverOptions } from './dns.js';
export { DnsCache, DnsCacheManager } from './dns-cache.js';
export type { DnsCacheConfig, DnsCacheListener, DnsCacheOptions, DnsCacheStats, DnsHostInfo, LoadResult } from './dns-cache.js';
export { DNS_CACHE_OVERFLOW, DNS_RESOLUTION_FAILURE, DynamicForwardProxy, dnsNameFor } from './dynamic-forward-proxy.js';
export type { DynamicHostCallback, DynamicHostSink } from './dynamic-forward-proxy.js';
export * from './lb/index.js';

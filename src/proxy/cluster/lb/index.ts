export type { LbContext, LbSpec, LoadBalancer } from './types.js';
export { BaseLoadBalancer, DEFAULT_PANIC_THRESHOLD, MAX_HOST_SELECTION_ATTEMPTS } from './base.js';
export { RoundRobinLoadBalancer } from './round-robin.js';
export { LeastRequestLoadBalancer, DEFAULT_CHOICE_COUNT } from './least-request.js';
export { RandomLoadBalancer } from './random.js';
export { RingHashLoadBalancer, DEFAULT_MIN_RING_SIZE, DEFAULT_MAX_RING_SIZE } from './ring-hash.js';
export { MaglevLoadBalancer, MAGLEV_TABLE_SIZE } from './maglev.js';
export { createLoadBalancer } from './create.js';

/**
 * createLoadBalancer: the one place a ClusterSpec's lb_policy becomes a LoadBalancer.
 * CLUSTER_PROVIDED (ORIGINAL_DST clusters) gets round robin here; the cluster itself decides
 * the destination before the balancer is consulted.
 */
import type { HostSet } from '../host.js';
import type { LbSpec, LoadBalancer } from './types.js';
import { LeastRequestLoadBalancer } from './least-request.js';
import { MaglevLoadBalancer } from './maglev.js';
import { RandomLoadBalancer } from './random.js';
import { RingHashLoadBalancer } from './ring-hash.js';
import { RoundRobinLoadBalancer } from './round-robin.js';

export function createLoadBalancer(spec: LbSpec, hosts: HostSet): LoadBalancer {
  const panic = spec.healthyPanicThreshold;
  let lb: LoadBalancer;
  switch (spec.lbPolicy) {
    case 'LEAST_REQUEST':
      lb = new LeastRequestLoadBalancer(hosts, panic, spec.leastRequest.choiceCount);
      break;
    case 'RANDOM':
      lb = new RandomLoadBalancer(hosts, panic);
      break;
    case 'RING_HASH':
      lb = new RingHashLoadBalancer(hosts, panic, spec.ringHash);
      break;
    case 'MAGLEV':
      lb = new MaglevLoadBalancer(hosts, panic);
      break;
    case 'ROUND_ROBIN':
    case 'CLUSTER_PROVIDED':
    default:
      lb = new RoundRobinLoadBalancer(hosts, panic);
      break;
  }
  lb.refresh();
  return lb;
}

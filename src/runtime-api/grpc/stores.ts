/**
 * Finding the component a request names, with Layotto's statuses: no component of the block at
 * all is FAILED_PRECONDITION ("state store is not configured"), an empty or unknown name is
 * INVALID_ARGUMENT naming it ("state store orders is not found"); one configured but not created
 * yet (its secretKeyRef could not be read) is UNAVAILABLE with the reason.
 */
import type { BuildingBlock, Component } from '../../components/registry.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { Code, GrpcError, invalid } from './errors.js';

const LABELS: Record<BuildingBlock, string> = {
  state: 'state store',
  pubsub: 'pubsub',
  configuration: 'configuration store',
  lock: 'lock store',
  sequencer: 'sequencer store',
  secretstores: 'secret store',
};

/** `field` is the request field holding the name (`store_name`, `pubsub_name`). */
export function findComponent<T extends Component>(services: RuntimeServices, block: BuildingBlock, name: string, field = 'store_name'): T {
  const found = name ? services.components.component<T>(block, name) : undefined;
  if (found) return found;
  const label = LABELS[block];
  if (services.components.names(block).length === 0) throw new GrpcError(Code.FAILED_PRECONDITION, `${label} is not configured`);
  if (!name) throw invalid(`${field} is empty: name the ${label}`);
  if (services.components.names(block).includes(name)) {
    // Configured, but not created yet (its secrets could not be read): a backend matter, retryable.
    const why = services.components.statuses().find((s) => s.name === name)?.error ?? 'starting';
    throw new GrpcError(Code.UNAVAILABLE, `${label} ${name} is not ready: ${why}`);
  }
  throw invalid(`${label} ${name} is not found`);
}

/** A proto `map<string,string>` as decoded (a plain object; absent → {}). */
export function stringMap(m: unknown): Record<string, string> {
  return m && typeof m === 'object' ? (m as Record<string, string>) : {};
}

/** Helpers shared by the configuration backends: query checks and matching, watch ids. */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { ComponentRequestError } from '../errors.js';
import type { ConfigurationItem, ConfigurationQuery } from './store.js';

export function checkKeys(keys: readonly string[], op: string): void {
  if (!Array.isArray(keys)) throw new ComponentRequestError(`${op}: keys must be a list`);
  for (const k of keys) if (typeof k !== 'string' || k === '') throw new ComponentRequestError(`${op}: a key is empty`);
}

/** Does the item fall under the query (empty keys = every key; group/label when given)? */
export function matches(q: ConfigurationQuery, item: Pick<ConfigurationItem, 'key' | 'group' | 'label'>): boolean {
  if (q.keys.length > 0 && !q.keys.includes(item.key)) return false;
  if (q.group && item.group !== q.group) return false;
  if (q.label && item.label !== q.label) return false;
  return true;
}

export function newWatchId(): string {
  return randomUUID();
}

/** A subscriber that throws must not break delivery to the others. */
export function deliver(onChange: (items: ConfigurationItem[]) => void, items: ConfigurationItem[], logger: Logger, component: string): void {
  if (items.length === 0) return;
  try {
    onChange(items);
  } catch (e) {
    logger.warn({ component, error: (e as Error).message }, 'configuration: a subscriber failed on a change');
  }
}

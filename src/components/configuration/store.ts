/**
 * The configuration building block (Layotto's `configstores` and Dapr's `configuration`):
 * key → value items with a version, read by keys, optionally written, and watched.
 *
 * - `get` with no keys returns every item (of the group/label when given).
 * - A missing key is simply absent from the result.
 * - `subscribe` calls `onChange` with the changed items within 1 s of a change; a deleted key
 *   arrives as an item with `deleted: true` and value ''. `keys` empty = every key.
 * - Stores without WRITABLE throw ComponentUnsupportedError from save/delete.
 */
import type { Component } from '../registry.js';

export type ConfigurationFeature = 'WRITABLE';

export interface ConfigurationItem {
  readonly key: string;
  readonly value: string;
  /** Changes on every write of the key. */
  readonly version: string;
  readonly group?: string;
  readonly label?: string;
  readonly tags?: Readonly<Record<string, string>>;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Only in change notifications. */
  readonly deleted?: boolean;
}

export interface ConfigurationQuery {
  readonly keys: readonly string[];
  readonly group?: string;
  readonly label?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface ConfigurationWatch {
  readonly id: string;
  close(): Promise<void>;
}

export interface ConfigurationStore extends Component {
  features(): readonly ConfigurationFeature[];
  get(q: ConfigurationQuery): Promise<ConfigurationItem[]>;
  save(items: readonly Omit<ConfigurationItem, 'version' | 'deleted'>[], metadata?: Readonly<Record<string, string>>): Promise<void>;
  delete(q: ConfigurationQuery): Promise<void>;
  subscribe(q: ConfigurationQuery, onChange: (items: ConfigurationItem[]) => void): Promise<ConfigurationWatch>;
}

/**
 * The secrets building block (Dapr's `secretstores`): a secret is a name → (key → value) map;
 * single-valued stores return `{[name]: value}`. A missing secret is ComponentError 'not-found'.
 */
import type { Component } from '../registry.js';

export interface SecretRequest {
  readonly key: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface SecretStore extends Component {
  get(req: SecretRequest): Promise<Record<string, string>>;
  bulkGet(metadata?: Readonly<Record<string, string>>): Promise<Record<string, Record<string, string>>>;
}

/**
 * `secretstores.local.env` (Dapr's, for development): the sidecar's environment variables,
 * read at each call. With `prefix: APP_`, only APP_* variables are secrets and `DB_PASS` reads
 * APP_DB_PASS. Without a prefix every variable of the sidecar process is readable, so set one
 * when the app is not fully trusted. A secret is `{name: value}`.
 */
import { ComponentError, ComponentRequestError } from '../../errors.js';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import type { SecretRequest, SecretStore } from '../store.js';
import { localEnvSecretMetadata, type LocalEnvSecretMetadata } from './config.js';

export class LocalEnvSecretStore implements SecretStore {
  constructor(
    private readonly m: LocalEnvSecretMetadata,
    private readonly ctx: ComponentContext,
  ) {}

  async init(): Promise<void> {}

  async close(): Promise<void> {}

  async get(req: SecretRequest): Promise<Record<string, string>> {
    if (typeof req.key !== 'string' || req.key === '') throw new ComponentRequestError('key is empty');
    const value = process.env[this.m.prefix + req.key];
    if (value === undefined) throw new ComponentError('not-found', `secret ${JSON.stringify(req.key)} not found in secret store ${this.ctx.name}`);
    return { [req.key]: value };
  }

  async bulkGet(): Promise<Record<string, Record<string, string>>> {
    const out: Record<string, Record<string, string>> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value === undefined || !name.startsWith(this.m.prefix) || name.length === this.m.prefix.length) continue;
      const key = name.slice(this.m.prefix.length);
      out[key] = { [key]: value };
    }
    return out;
  }
}

export const localEnvSecretStore: ComponentDefinition<LocalEnvSecretStore, LocalEnvSecretMetadata> = {
  type: 'secretstores.local.env',
  block: 'secretstores',
  version: 'v1',
  metadataSchema: localEnvSecretMetadata,
  create: (m, ctx) => new LocalEnvSecretStore(m, ctx),
};

/**
 * `secretstores.local.file` (Dapr's, for development): secrets from a JSON file read at init,
 * nested objects and arrays flattened with `nestedSeparator` (`{"db": {"pass": "x"}}` → `db:pass`).
 * multiValued: each top-level key is one secret and its flattened children are that secret's
 * keys. A YAML file is accepted too when it is not JSON but parses as YAML.
 *
 * Secret values never reach a log line or an error message: parse errors name the file, line and
 * column only (JSON.parse's and yaml's own messages quote the text around the error).
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { ComponentBackendError, ComponentError, ComponentRequestError } from '../../errors.js';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import type { SecretRequest, SecretStore } from '../store.js';
import { localFileSecretMetadata, type LocalFileSecretMetadata } from './config.js';

type Secrets = Map<string, Record<string, string>>;

export class LocalFileSecretStore implements SecretStore {
  private secrets: Secrets | null = null;

  constructor(
    private readonly m: LocalFileSecretMetadata,
    private readonly ctx: ComponentContext,
  ) {}

  async init(): Promise<void> {
    const doc = parseSecretsFile(this.m.secretsFile, await this.read());
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
      throw new ComponentBackendError(`secretsFile ${this.m.secretsFile}: expected a JSON object at the top`);
    }
    this.secrets = this.m.multiValued ? multiValued(doc as Record<string, unknown>, this.m.nestedSeparator) : singleValued(doc, this.m.nestedSeparator);
    this.ctx.logger.debug({ component: this.ctx.name, file: this.m.secretsFile, secrets: this.secrets.size }, 'secretstores.local.file: loaded');
  }

  async close(): Promise<void> {
    this.secrets = null;
  }

  status(): { ready: boolean; error?: string } {
    return this.secrets ? { ready: true } : { ready: false, error: `${this.m.secretsFile} is not loaded` };
  }

  async get(req: SecretRequest): Promise<Record<string, string>> {
    if (typeof req.key !== 'string' || req.key === '') throw new ComponentRequestError('key is empty');
    const s = this.loaded().get(req.key);
    if (!s) throw new ComponentError('not-found', `secret ${JSON.stringify(req.key)} not found in secret store ${this.ctx.name}`);
    return { ...s };
  }

  async bulkGet(): Promise<Record<string, Record<string, string>>> {
    return Object.fromEntries([...this.loaded()].map(([k, v]) => [k, { ...v }]));
  }

  private loaded(): Secrets {
    if (!this.secrets) throw new ComponentBackendError(`secret store ${this.ctx.name} is not initialised (${this.m.secretsFile})`);
    return this.secrets;
  }

  private async read(): Promise<string> {
    try {
      return await readFile(this.m.secretsFile, 'utf8');
    } catch (e) {
      throw new ComponentBackendError(`cannot read secretsFile ${this.m.secretsFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, e);
    }
  }
}

/** JSON first; YAML when that fails. Errors carry positions, never the text. */
function parseSecretsFile(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
    const err = doc.errors[0];
    if (!err) return doc.toJS();
    const at = lines.linePos(err.pos[0]);
    throw new ComponentBackendError(`secretsFile ${file} is neither valid JSON nor YAML: ${err.code} at line ${at.line}, column ${at.col}`);
  }
}

function scalar(v: unknown): string {
  return v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** Flattens nested objects and arrays into `a<sep>b<sep>0` → value. */
function flatten(v: unknown, sep: string, prefix: string, out: Record<string, string>): void {
  if (v !== null && typeof v === 'object') {
    const entries = Array.isArray(v) ? v.map((x, i) => [String(i), x] as const) : Object.entries(v);
    for (const [k, child] of entries) flatten(child, sep, prefix === '' ? k : `${prefix}${sep}${k}`, out);
    return;
  }
  out[prefix] = scalar(v);
}

function singleValued(doc: unknown, sep: string): Secrets {
  const flat: Record<string, string> = {};
  flatten(doc, sep, '', flat);
  return new Map(Object.entries(flat).map(([k, v]) => [k, { [k]: v }]));
}

function multiValued(doc: Record<string, unknown>, sep: string): Secrets {
  const out: Secrets = new Map();
  for (const [name, v] of Object.entries(doc)) {
    if (v !== null && typeof v === 'object') {
      const keys: Record<string, string> = {};
      flatten(v, sep, '', keys);
      out.set(name, keys);
    } else {
      out.set(name, { [name]: scalar(v) });
    }
  }
  return out;
}

export const localFileSecretStore: ComponentDefinition<LocalFileSecretStore, LocalFileSecretMetadata> = {
  type: 'secretstores.local.file',
  block: 'secretstores',
  version: 'v1',
  metadataSchema: localFileSecretMetadata,
  create: (m, ctx) => new LocalFileSecretStore(m, ctx),
};

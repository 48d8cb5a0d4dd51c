/**
 * Dapr's configuration API (`/v1.0/` and the older `/v1.0-alpha1/` paths):
 *   GET /configuration/{store}?key=a&key=b[&metadata.k=v]  → 200 {a: {value, version, metadata}}
 *                                                          (no key: every item)
 *   GET /configuration/{store}/subscribe?key=a             → 200 {id}; each change is POSTed to
 *        the app at /configuration/{store}/{key} with {id, items: {key: {value, version, metadata}}}
 *   GET /configuration/{store}/{id}/unsubscribe            → 200 {ok: true}
 * Updates need the app's HTTP channel (app.port); without one subscribe fails naming it.
 */
import type { Logger } from 'pino';
import type { ConfigurationItem, ConfigurationStore, ConfigurationWatch } from '../../components/configuration/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import { DaprHttpError, componentFailure, findComponent } from './errors.js';
import { json, queryMetadata, type Reply } from './io.js';

/** How the server reaches the app for configuration updates. */
export interface AppCallback {
  /** POST a JSON body to the app's `path`; resolves with the HTTP status. */
  post(path: string, body: unknown): Promise<number>;
}

interface Watching {
  readonly store: string;
  readonly watch: ConfigurationWatch;
}

export class ConfigurationApi {
  private readonly watches = new Map<string, Watching>();

  constructor(
    private readonly services: RuntimeServices,
    private readonly app: AppCallback | undefined,
    private readonly logger: Logger,
  ) {}

  async get(storeName: string, query: URLSearchParams): Promise<Reply> {
    const store = this.store(storeName);
    const keys = query.getAll('key').filter((k) => k !== '');
    let items: ConfigurationItem[];
    try {
      items = await store.get({ keys, metadata: queryMetadata(query) });
    } catch (e) {
      throw componentFailure('ERR_CONFIGURATION_GET', `failed to get ${keys.join(',')} from Configuration store ${storeName}`, e);
    }
    return json(200, itemsMap(items));
  }

  async subscribe(storeName: string, query: URLSearchParams): Promise<Reply> {
    const store = this.store(storeName);
    const keys = query.getAll('key').filter((k) => k !== '');
    const what = `failed to subscribe ${keys.join(',')} from Configuration store ${storeName}`;
    const app = this.app;
    if (!app) throw new DaprHttpError('ERR_CONFIGURATION_SUBSCRIBE', `${what}: no app channel to send updates to (set app.port, app.protocol: http)`);
    let id = '';
    let watch: ConfigurationWatch;
    try {
      watch = await store.subscribe({ keys, metadata: queryMetadata(query) }, (items) => void this.notify(app, storeName, id, items));
    } catch (e) {
      throw componentFailure('ERR_CONFIGURATION_SUBSCRIBE', what, e);
    }
    id = watch.id;
    this.watches.set(id, { store: storeName, watch });
    return json(200, { id });
  }

  async unsubscribe(storeName: string, id: string): Promise<Reply> {
    this.store(storeName);
    const w = this.watches.get(id);
    if (!w || w.store !== storeName) throw new DaprHttpError('ERR_CONFIGURATION_UNSUBSCRIBE', `failed to unsubscribe to configuration request ${id}: subscription with id ${id} does not exist in store ${storeName}`);
    this.watches.delete(id);
    try {
      await w.watch.close();
    } catch (e) {
      throw componentFailure('ERR_CONFIGURATION_UNSUBSCRIBE', `failed to unsubscribe to configuration request ${id}`, e);
    }
    return json(200, { ok: true });
  }

  async close(): Promise<void> {
    const all = [...this.watches.values()];
    this.watches.clear();
    await Promise.all(all.map((w) => w.watch.close().catch(() => undefined)));
  }

  private store(name: string): ConfigurationStore {
    return findComponent(this.services.components.view<ConfigurationStore>('configuration'), name, {
      label: 'configuration store',
      notConfigured: ['ERR_CONFIGURATION_STORE_NOT_CONFIGURED', 'configuration stores not configured'],
      notFound: 'ERR_CONFIGURATION_STORE_NOT_FOUND',
      notFoundMessage: (n) => `configuration store ${n} not found`,
      notReady: 'ERR_CONFIGURATION_STORE_NOT_FOUND',
    });
  }

  /** As Dapr: one POST per changed key, each carrying the whole change. */
  private async notify(app: AppCallback, store: string, id: string, items: ConfigurationItem[]): Promise<void> {
    const body = { id, items: itemsMap(items) };
    for (const it of items) {
      const path = `/configuration/${encodeURIComponent(store)}/${encodeURIComponent(it.key)}`;
      try {
        const status = await app.post(path, body);
        if (status < 200 || status > 299) this.logger.warn({ store, key: it.key, path, status }, 'the app did not accept a configuration update');
      } catch (e) {
        this.logger.warn({ store, key: it.key, path, error: (e as Error).message }, 'configuration update could not be sent to the app');
      }
    }
  }
}

function itemsMap(items: readonly ConfigurationItem[]): Record<string, { value: string; version: string; metadata: Record<string, string> }> {
  const out: Record<string, { value: string; version: string; metadata: Record<string, string> }> = {};
  for (const it of items) out[it.key] = { value: it.value, version: it.version, metadata: { ...it.metadata } };
  return out;
}

/**
 * Layotto's configuration RPCs over the configuration building block.
 *
 * SubscribeConfiguration is a bidi stream: every SubscribeConfigurationRequest the client sends
 * opens one watch on its store; each change the store reports (within 1 s) is sent as one
 * SubscribeConfigurationResponse with the changed items (a deleted key arrives with empty
 * content, as the proto documents). The client ending or cancelling the stream, or the server
 * shutting down, closes every watch of the stream. An unknown store or a failing watch ends the
 * stream with its status. As in Layotto, no initial snapshot is sent: GetConfiguration reads.
 */
import type { Logger } from 'pino';
import type { ConfigurationItem, ConfigurationQuery, ConfigurationStore, ConfigurationWatch } from '../../components/configuration/store.js';
import type { RuntimeServices } from '../../runtime/services.js';
import type { BidiCall } from './h2-server.js';
import { invalid, toGrpcError, wrap } from './errors.js';
import { findComponent, stringMap } from './stores.js';

interface ConfigurationItemPB {
  key: string;
  content: string;
  group: string;
  label: string;
  tags: Record<string, string>;
  metadata: Record<string, string>;
}

interface QueryPB {
  store_name: string;
  app_id: string;
  group: string;
  label: string;
  keys: string[];
  metadata: Record<string, string>;
}

function query(req: QueryPB): ConfigurationQuery {
  // Layotto treats a blank group / label as "the store's default".
  const group = req.group?.trim();
  const label = req.label?.trim();
  return { keys: req.keys ?? [], ...(group ? { group } : {}), ...(label ? { label } : {}), metadata: stringMap(req.metadata) };
}

function toPB(it: ConfigurationItem): ConfigurationItemPB {
  return {
    key: it.key,
    content: it.deleted ? '' : it.value,
    group: it.group ?? '',
    label: it.label ?? '',
    tags: { ...(it.tags ?? {}) },
    metadata: { ...(it.metadata ?? {}) },
  };
}

/** `shutdown` aborting (the server closing) ends every open subscription stream. */
export function configurationHandlers(services: RuntimeServices, logger: Logger, shutdown: AbortSignal) {
  const store = (name: string): ConfigurationStore => findComponent<ConfigurationStore>(services, 'configuration', name);

  return {
    async GetConfiguration(req: QueryPB) {
      const s = store(req.store_name);
      const items = await wrap(`get configuration failed from configuration store ${req.store_name}`, () => s.get(query(req)));
      return { items: items.map(toPB) };
    },

    async SaveConfiguration(req: { store_name: string; items: ConfigurationItemPB[]; metadata: Record<string, string> }) {
      const s = store(req.store_name);
      const items = (req.items ?? []).map((it, i) => {
        if (!it?.key) throw invalid(`items[${i}].key is empty`);
        const group = it.group?.trim();
        const label = it.label?.trim();
        return {
          key: it.key,
          value: it.content ?? '',
          ...(group ? { group } : {}),
          ...(label ? { label } : {}),
          tags: stringMap(it.tags),
          metadata: stringMap(it.metadata),
        };
      });
      if (items.length) await wrap(`save configuration failed in configuration store ${req.store_name}`, () => s.save(items, stringMap(req.metadata)));
      return {};
    },

    async DeleteConfiguration(req: QueryPB) {
      const s = store(req.store_name);
      // An empty key list would mean "every key" to the store: never a delete by accident.
      if (!req.keys?.length) throw invalid('keys is empty: name the configuration keys to delete');
      await wrap(`delete configuration failed in configuration store ${req.store_name}`, () => s.delete(query(req)));
      return {};
    },

    SubscribeConfiguration(call: BidiCall): void {
      const watches: ConfigurationWatch[] = [];
      let done = false;

      const closeWatches = (): void => {
        for (const w of watches.splice(0)) w.close().catch((e: unknown) => logger.warn({ error: (e as Error).message }, 'closing a configuration watch failed'));
      };
      const finish = (e?: unknown): void => {
        if (done) return;
        done = true;
        closeWatches();
        if (e === undefined) {
          call.end();
          return;
        }
        const g = toGrpcError(e);
        call.fail(g.code, g.message);
      };

      call.on('data', (req: QueryPB) => {
        if (done) return;
        void (async () => {
          const s = store(req.store_name);
          const watch = await wrap(`subscribe configuration failed in configuration store ${req.store_name}`, () =>
            s.subscribe(query(req), (items) => {
              if (done || items.length === 0) return;
              call.write({ store_name: req.store_name, app_id: req.app_id ?? '', items: items.map(toPB) });
            }),
          );
          if (done) await watch.close();
          else watches.push(watch);
        })().catch(finish);
      });
      const onShutdown = (): void => finish();
      if (shutdown.aborted) return finish();
      shutdown.addEventListener('abort', onShutdown, { once: true });
      // The client went away (cancel, broken connection) or the stream failed: no status to send.
      const abandon = (): void => {
        done = true;
        closeWatches();
        shutdown.removeEventListener('abort', onShutdown);
      };
      call.on('end', () => {
        finish();
        shutdown.removeEventListener('abort', onShutdown);
      });
      call.on('cancelled', abandon);
    },
  };
}

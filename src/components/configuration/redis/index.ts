/**
 * `configuration.redis` (Dapr's Redis configuration store layout): an item is the Redis string
 * `<keyPrefix><key>` holding `value||version`, so values written by Dapr or by hand
 * (`SET app:greeting "hello||1"`) are read as they are; a plain string without `||` is a value
 * with an empty version. The version is the last `||` part, so values may contain `||`
 * themselves. save() bumps the version in one script (numeric versions + 1, otherwise 1).
 * Groups, labels and tags are not stored (Dapr's Redis store has none): queries ignore them.
 *
 * Subscriptions hear of every write to the server, by this sidecar, another one or redis-cli:
 * through keyspace notifications (`notify-keyspace-events` gains the K$gxe flags it lacks at
 * init, logged; set subscribeMode: poll to leave the server alone), or by polling the watched
 * keys when notifications are off or refused. After a reconnect every watch re-reads its keys,
 * so changes made during the outage are delivered too.
 */
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { ComponentRequestError } from '../../errors.js';
import { RedisConnection } from '../../redis/connection.js';
import { checkKeys, deliver, newWatchId } from '../query.js';
import type { ConfigurationFeature, ConfigurationItem, ConfigurationQuery, ConfigurationStore, ConfigurationWatch } from '../store.js';
import { redisConfigurationMetadata, type RedisConfigurationMetadata } from './config.js';

const FEATURES: readonly ConfigurationFeature[] = ['WRITABLE'];
const SEP = '||';

/** KEYS: the items; ARGV: their values. Writes `value||version+1`; returns the versions. */
const SAVE = `
local out = {}
for i, k in ipairs(KEYS) do
  local cur = redis.call('GET', k)
  local v = 0
  if cur then v = tonumber(string.match(cur, '||(%d+)$')) or 0 end
  redis.call('SET', k, ARGV[i] .. '||' .. (v + 1))
  out[i] = v + 1
end
return out`;

/** Keyspace notification flags needed: K (keyspace channel), $ string writes, g DEL, x expired, e evicted. */
const NEEDED_FLAGS = ['$', 'g', 'x', 'e'];

interface Watch {
  readonly q: ConfigurationQuery;
  readonly onChange: (items: ConfigurationItem[]) => void;
  /** The raw value last seen per key (what changes are measured against). */
  readonly seen: Map<string, string>;
}

type SaveScript = (numKeys: number, ...args: string[]) => Promise<number[]>;

export class RedisConfigurationStore implements ConfigurationStore {
  private readonly conn: RedisConnection;
  private sub: RedisConnection | null = null;
  private readonly prefix: string;
  private readonly saveScript: SaveScript;
  private readonly watches = new Map<string, Watch>();
  private started = false;
  private poller: NodeJS.Timeout | null = null;
  private readonly pending = new Set<string>();
  private flushing = false;

  constructor(
    private readonly m: RedisConfigurationMetadata,
    private readonly ctx: ComponentContext,
  ) {
    this.conn = new RedisConnection(m, 'configuration.redis', ctx);
    this.prefix = m.keyPrefix;
    this.conn.client.defineCommand('capaConfigSave', { lua: SAVE });
    this.saveScript = (this.conn.client as unknown as { capaConfigSave: SaveScript }).capaConfigSave.bind(this.conn.client);
  }

  // === impl Component ===

  async init(): Promise<void> {
    await this.conn.init();
    if (this.started) return;
    if (this.m.subscribeMode === 'keyspace' && (await this.enableKeyspaceEvents())) {
      await this.subscribeKeyspace();
    } else {
      this.poller = setInterval(() => void this.resync(), this.m.pollIntervalMs);
      this.poller.unref();
    }
    this.started = true;
  }

  async close(): Promise<void> {
    this.started = false;
    if (this.poller) clearInterval(this.poller);
    this.poller = null;
    this.sub?.close();
    this.sub = null;
    this.conn.close();
    this.watches.clear();
  }

  status(): { ready: boolean; error?: string } {
    const s = this.conn.status();
    if (!s.ready || !this.sub) return s;
    const w = this.sub.status();
    return w.ready ? s : { ready: true, error: `notifications: ${w.error ?? 'disconnected'}` };
  }

  features(): readonly ConfigurationFeature[] {
    return FEATURES;
  }

  // === impl ConfigurationStore ===

  async get(q: ConfigurationQuery): Promise<ConfigurationItem[]> {
    checkKeys(q.keys, 'get');
    const raw = await this.read(q.keys.length > 0 ? q.keys : await this.scanKeys());
    return [...raw].map(([key, v]) => toItem(key, v));
  }

  async save(items: readonly Omit<ConfigurationItem, 'version' | 'deleted'>[]): Promise<void> {
    for (const i of items) {
      if (typeof i.key !== 'string' || i.key === '') throw new ComponentRequestError('save: an item has an empty key');
      if (typeof i.value !== 'string') throw new ComponentRequestError(`save: the value of ${JSON.stringify(i.key)} must be a string`);
    }
    if (items.length === 0) return;
    const keys = items.map((i) => this.prefix + i.key);
    await this.conn.call(() => this.saveScript(keys.length, ...keys, ...items.map((i) => i.value)));
    this.changed(items.map((i) => i.key));
  }

  async delete(q: ConfigurationQuery): Promise<void> {
    checkKeys(q.keys, 'delete');
    if (q.keys.length === 0) throw new ComponentRequestError('delete: keys is empty');
    await this.conn.call(() => this.conn.client.del(...q.keys.map((k) => this.prefix + k)));
    this.changed(q.keys);
  }

  async subscribe(q: ConfigurationQuery, onChange: (items: ConfigurationItem[]) => void): Promise<ConfigurationWatch> {
    checkKeys(q.keys, 'subscribe');
    const watch: Watch = { q, onChange, seen: await this.read(q.keys.length > 0 ? q.keys : await this.scanKeys()) };
    const id = newWatchId();
    this.watches.set(id, watch);
    return { id, close: async () => void this.watches.delete(id) };
  }

  // === impl notifications ===

  /** true when the server publishes the keyspace events needed (enabling the missing flags). */
  private async enableKeyspaceEvents(): Promise<boolean> {
    const c = this.conn.client;
    try {
      const [, current = ''] = (await c.config('GET', 'notify-keyspace-events')) as string[];
      const all = current.includes('A');
      const missing = (current.includes('K') ? '' : 'K') + NEEDED_FLAGS.filter((f) => !all && !current.includes(f)).join('');
      if (missing === '') return true;
      await c.config('SET', 'notify-keyspace-events', current + missing);
      this.ctx.logger.info(
        { component: this.ctx.name, redis: this.conn.where, before: current, after: current + missing },
        'configuration.redis: enabled Redis keyspace notifications (notify-keyspace-events) to deliver changes',
      );
      return true;
    } catch (e) {
      this.ctx.logger.warn(
        { component: this.ctx.name, redis: this.conn.where, error: (e as Error).message, pollIntervalMs: this.m.pollIntervalMs },
        'configuration.redis: cannot enable keyspace notifications; polling the watched keys instead',
      );
      return false;
    }
  }

  private async subscribeKeyspace(): Promise<void> {
    const sub = (this.sub ??= this.conn.duplicate());
    await sub.init();
    const channel = `__keyspace@${this.m.redisDB}__:`;
    if (sub.client.listenerCount('pmessage') === 0) {
      sub.client.on('pmessage', (_pattern: string, ch: string) => {
        const key = ch.slice(channel.length + this.prefix.length);
        if (this.wanted(key)) this.changed([key]);
      });
      // Notifications sent while disconnected are lost: re-read everything watched.
      sub.client.on('ready', () => void this.resync());
    }
    await sub.call(() => sub.client.psubscribe(channel + globEscape(this.prefix) + '*'));
  }

  private wanted(key: string): boolean {
    for (const w of this.watches.values()) if (w.q.keys.length === 0 || w.q.keys.includes(key)) return true;
    return false;
  }

  /** Re-reads the keys soon (batching the notifications of one burst) and tells the watches. */
  private changed(keys: readonly string[]): void {
    for (const k of keys) this.pending.add(k);
    if (this.flushing) return;
    this.flushing = true;
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    const keys = [...this.pending];
    this.pending.clear();
    try {
      if (keys.length > 0 && this.watches.size > 0) {
        const now = await this.read(keys);
        for (const w of [...this.watches.values()]) this.compare(w, keys.filter((k) => w.q.keys.length === 0 || w.q.keys.includes(k)), now);
      }
    } catch (e) {
      this.ctx.logger.warn({ component: this.ctx.name, error: (e as Error).message }, 'configuration.redis: cannot read changed keys; retrying');
      for (const k of keys) this.pending.add(k);
      await new Promise((r) => setTimeout(r, this.m.pollIntervalMs));
    } finally {
      this.flushing = false;
      if (this.pending.size > 0 && this.started) this.changed([]);
    }
  }

  /** Polling, and after a reconnect: every watch against its keys' current values. */
  private async resync(): Promise<void> {
    if (this.watches.size === 0 || this.conn.client.status !== 'ready') return;
    try {
      const all = [...this.watches.values()].some((w) => w.q.keys.length === 0) ? await this.scanKeys() : [];
      for (const w of [...this.watches.values()]) {
        const keys = w.q.keys.length > 0 ? [...w.q.keys] : [...new Set([...all, ...w.seen.keys()])];
        this.compare(w, keys, await this.read(keys));
      }
    } catch (e) {
      this.ctx.logger.debug({ component: this.ctx.name, error: (e as Error).message }, 'configuration.redis: poll failed');
    }
  }

  private compare(w: Watch, keys: readonly string[], now: Map<string, string>): void {
    const out: ConfigurationItem[] = [];
    for (const key of keys) {
      const before = w.seen.get(key);
      const after = now.get(key);
      if (before === after) continue;
      if (after === undefined) {
        w.seen.delete(key);
        out.push({ key, value: '', version: toItem(key, before!).version, deleted: true });
      } else {
        w.seen.set(key, after);
        out.push(toItem(key, after));
      }
    }
    deliver(w.onChange, out, this.ctx.logger, this.ctx.name);
  }

  // === impl reads ===

  /** key (without prefix) → raw `value||version`, for the keys that exist. */
  private async read(keys: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < keys.length; i += 500) {
      const chunk = keys.slice(i, i + 500);
      const vals = await this.conn.call(() => this.conn.client.mget(...chunk.map((k) => this.prefix + k)));
      chunk.forEach((k, j) => {
        const v = vals[j];
        if (v !== null && v !== undefined) out.set(k, v);
      });
    }
    return out;
  }

  /** Every key under the prefix (SCAN, never KEYS), without the prefix. */
  private async scanKeys(): Promise<string[]> {
    const out = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await this.conn.call(() => this.conn.client.scan(cursor, 'MATCH', globEscape(this.prefix) + '*', 'COUNT', 1000));
      for (const k of keys) out.add(k.slice(this.prefix.length));
      cursor = next;
    } while (cursor !== '0');
    return [...out];
  }
}

function toItem(key: string, raw: string): ConfigurationItem {
  const i = raw.lastIndexOf(SEP);
  return i < 0 ? { key, value: raw, version: '' } : { key, value: raw.slice(0, i), version: raw.slice(i + SEP.length) };
}

function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

export const redisConfiguration: ComponentDefinition<RedisConfigurationStore, RedisConfigurationMetadata> = {
  type: 'configuration.redis',
  block: 'configuration',
  version: 'v1',
  metadataSchema: redisConfigurationMetadata,
  create: (m, ctx) => new RedisConfigurationStore(m, ctx),
};

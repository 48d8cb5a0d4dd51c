/**
 * One ioredis client per Redis URL, shared by every global-scope limit of the process and
 * reference-counted: the last `release()` (BuiltFilter.close()) disconnects it. The client is
 * created on the first build that needs it (nothing connects at import), never queues commands
 * while disconnected (`enableOfflineQueue: false`, so a down Redis fails fast and `failOpen`
 * decides), and reconnects in the background.
 */
import type { Redis } from 'ioredis';
import type * as IoRedis from 'ioredis';
import { lazy } from '../../lazy.js';

const ioredis = lazy<typeof IoRedis>('ioredis');
import type { Logger } from 'pino';

interface Shared {
  readonly client: Redis;
  refs: number;
  /** Settles when the first connection attempt did (ready or failed). */
  readonly firstAttempt: Promise<void>;
  attempted: boolean;
}

const clients = new Map<string, Shared>();

export interface RedisLease {
  readonly client: Redis;
  /**
   * Null once the first connection attempt is over; until then a Promise for it, so requests
   * that arrive while the sidecar is still connecting wait for it instead of failing open.
   */
  pending(): Promise<void> | null;
  release(): void;
}

export function acquireRedis(url: string, commandTimeoutMs: number, logger: Logger): RedisLease {
  let s = clients.get(url);
  if (!s) {
    const client = new (ioredis().Redis)(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: commandTimeoutMs,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    let reported = false;
    client.on('ready', () => {
      if (reported) logger.info({ redis: redactUrl(url) }, 'rate limit: Redis is reachable again');
      reported = false;
    });
    client.on('error', (e: Error) => {
      // Once per outage: ioredis retries every 2 s and would otherwise log each attempt.
      if (reported) return;
      reported = true;
      logger.warn({ redis: redactUrl(url), error: e.message }, 'rate limit: Redis unavailable; global limits follow failOpen');
    });
    let settle = (): void => {};
    const firstAttempt = new Promise<void>((r) => (settle = r));
    client.connect().then(
      () => settle(),
      () => settle(), // reported by the 'error' handler; retried by retryStrategy
    );
    const created: Shared = { client, refs: 0, firstAttempt, attempted: false };
    void firstAttempt.then(() => (created.attempted = true));
    s = created;
    clients.set(url, s);
  }
  s.refs++;
  const shared = s;
  let released = false;
  return {
    client: shared.client,
    pending: () => (shared.attempted ? null : shared.firstAttempt),
    release() {
      if (released) return;
      released = true;
      if (--shared.refs > 0) return;
      clients.delete(url);
      shared.client.disconnect();
    },
  };
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

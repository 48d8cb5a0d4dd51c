/**
 * The Redis connection shared by `lock.redis` and `configuration.redis` (the same shape as
 * state.redis): metadata named as Dapr's Redis components name it, a client that never queues
 * commands while disconnected (a call during an outage fails at once with the reason, nothing is
 * acknowledged that was not stored), reconnects in the background, and an `init` that waits for
 * the first connection for at most connectTimeoutMs.
 */
import type { Redis } from 'ioredis';
import type * as IoRedis from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { bool, int, text } from '../../../config/schema-common.js';
import { lazy } from '../../../lazy.js';
import { ComponentBackendError, ComponentError } from '../../errors.js';

const ioredis = lazy<typeof IoRedis>('ioredis');

export const redisConnectionFields = {
  /** `host:port`. */
  redisHost: text.default('127.0.0.1:6379'),
  redisUsername: text.optional(),
  redisPassword: text.optional(),
  redisDB: int(0, 15, 'a Redis database number').default(0),
  /** Prepended to every key; '' = none. */
  keyPrefix: text.default(''),
  /** Per-command timeout in milliseconds. */
  timeoutMs: int(1, 600_000, 'milliseconds').default(5000),
  /** How long `init` waits for the first connection before reporting the component as failed. */
  connectTimeoutMs: int(1, 600_000, 'milliseconds').default(2000),
  enableTLS: bool.default(false),
};

export interface RedisConnectionMetadata {
  readonly redisHost: string;
  readonly redisUsername?: string | undefined;
  readonly redisPassword?: string | undefined;
  readonly redisDB: number;
  readonly keyPrefix: string;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly enableTLS: boolean;
}

export function checkRedisHost(m: { redisHost: string }, ctx: z.RefinementCtx): void {
  if (!/^[^:\s]+:\d{1,5}$/.test(m.redisHost)) ctx.addIssue({ code: 'custom', message: `expected host:port, got ${JSON.stringify(m.redisHost)}`, path: ['redisHost'] });
}

export class RedisConnection {
  readonly client: Redis;
  readonly where: string;
  private lastError = '';

  /** `what` names the component type in log lines (`lock.redis`). */
  constructor(
    private readonly m: RedisConnectionMetadata,
    private readonly what: string,
    private readonly log: { readonly logger: Logger; readonly name: string },
    client?: Redis,
  ) {
    this.where = m.redisHost;
    this.client = client ?? this.newClient();
    this.watch(this.client);
  }

  /** A second connection with the same settings (a subscriber cannot run other commands). */
  duplicate(): RedisConnection {
    return new RedisConnection(this.m, this.what, this.log, this.newClient());
  }

  async init(): Promise<void> {
    const c = this.client;
    if (c.status === 'ready') return;
    if (c.status === 'wait') c.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        c.off('ready', done);
        resolve();
      };
      const timer = setTimeout(() => {
        c.off('ready', done);
        reject(new ComponentBackendError(`cannot connect to Redis at ${this.where}: ${this.lastError || 'timed out'}`));
      }, this.m.connectTimeoutMs);
      c.on('ready', done);
    });
  }

  close(): void {
    this.client.disconnect();
  }

  status(): { ready: boolean; error?: string } {
    const ready = this.client.status === 'ready';
    return ready ? { ready } : { ready, error: `Redis at ${this.where} is ${this.client.status}${this.lastError ? `: ${this.lastError}` : ''}` };
  }

  /** Backend failures become ComponentBackendError naming Redis and the reason. */
  async call<T>(f: () => Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (e instanceof ComponentError) throw e;
      throw new ComponentBackendError(`Redis at ${this.where}: ${(e as Error).message}`, e);
    }
  }

  private newClient(): Redis {
    const m = this.m;
    const i = m.redisHost.lastIndexOf(':');
    return new (ioredis().Redis)({
      host: m.redisHost.slice(0, i),
      port: Number(m.redisHost.slice(i + 1)),
      username: m.redisUsername,
      password: m.redisPassword,
      db: m.redisDB,
      tls: m.enableTLS ? {} : undefined,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: m.timeoutMs,
      connectTimeout: Math.min(m.connectTimeoutMs, 10_000),
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
  }

  /** One warning per outage, one info line when it is over. */
  private watch(c: Redis): void {
    const { logger, name } = this.log;
    let reported = false;
    c.on('ready', () => {
      if (reported) logger.info({ component: name, redis: this.where }, `${this.what}: connected again`);
      reported = false;
      this.lastError = '';
    });
    c.on('error', (e: Error) => {
      this.lastError = e.message;
      if (reported) return;
      reported = true;
      logger.warn({ component: name, redis: this.where, error: e.message }, `${this.what}: connection failed; retrying`);
    });
  }
}

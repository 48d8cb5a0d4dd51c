/**
 * The Redis connection every Redis-backed component uses: a client that never queues commands
 * while disconnected (a call during an outage fails at once with the reason, nothing is
 * acknowledged that was not stored), reconnects in the background logging once per outage, an
 * `init` that waits for the first connection for at most connectTimeoutMs, and `call`, which
 * turns a backend failure into a typed error naming Redis and the reason. ioredis is loaded on
 * first use (src/lazy.ts): most sidecars never touch Redis.
 */
import type { Redis, RedisOptions } from 'ioredis';
import type * as IoRedis from 'ioredis';
import type { Logger } from 'pino';
import { lazy } from '../../lazy.js';
import { ComponentBackendError, ComponentError } from '../errors.js';
import type { RedisConnectionMetadata } from './metadata.js';

const ioredis = lazy<typeof IoRedis>('ioredis');

export interface RedisConnectionOptions {
  /** ioredis options on top of the common ones (pubsub.redis: RESP2; sequencer.redis: stringNumbers). */
  readonly client?: Partial<RedisOptions>;
  /** What a backend failure becomes; state.redis keeps its own StateBackendError. */
  readonly backendError?: (message: string, cause: unknown) => Error;
  /** Errors `call` rethrows as they are (already typed, or decoded by the caller). */
  readonly passThrough?: (e: unknown) => boolean;
}

export class RedisConnection {
  readonly client: Redis;
  readonly where: string;
  private lastError = '';
  private readonly backendError: (message: string, cause: unknown) => Error;
  private readonly passThrough: (e: unknown) => boolean;

  /** `what` names the component type in log lines (`lock.redis`). */
  constructor(
    private readonly m: RedisConnectionMetadata,
    private readonly what: string,
    private readonly log: { readonly logger: Logger; readonly name: string },
    private readonly opts: RedisConnectionOptions = {},
    client?: Redis,
  ) {
    this.where = m.redisHost;
    this.backendError = opts.backendError ?? ((message, cause) => new ComponentBackendError(message, cause));
    this.passThrough = opts.passThrough ?? ((e) => e instanceof ComponentError);
    this.client = client ?? this.newClient();
    this.watch(this.client);
  }

  /** A second connection with the same settings (a subscriber cannot run other commands). */
  duplicate(): RedisConnection {
    return new RedisConnection(this.m, this.what, this.log, this.opts, this.newClient());
  }

  async init(): Promise<void> {
    const c = this.client;
    if (c.status === 'ready') return;
    // 'end': closed before, and init is called again (the manager retries a failed init).
    if (c.status === 'wait' || c.status === 'end') c.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        c.off('ready', done);
        resolve();
      };
      const timer = setTimeout(() => {
        c.off('ready', done);
        reject(this.backendError(`cannot connect to Redis at ${this.where}: ${this.lastError || 'timed out'}`, undefined));
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

  /** Runs one Redis call; a backend failure becomes a typed error naming Redis, `what` (when given) and the reason. */
  async call<T>(f: () => Promise<T>, what?: string): Promise<T> {
    try {
      return await f();
    } catch (e) {
      if (this.passThrough(e)) throw e;
      throw this.backendError(`Redis at ${this.where}: ${what ? `${what}: ` : ''}${(e as Error).message}`, e);
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
      ...this.opts.client,
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

/** The Component side (init, close, status) of a store that works through one Redis connection. */
export abstract class RedisComponent {
  constructor(protected readonly conn: RedisConnection) {}

  init(): Promise<void> {
    return this.conn.init();
  }

  async close(): Promise<void> {
    this.conn.close();
  }

  status(): { ready: boolean; error?: string } {
    return this.conn.status();
  }
}

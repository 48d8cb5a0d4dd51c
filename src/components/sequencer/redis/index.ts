/**
 * `sequencer.redis`: one counter per key, advanced with INCR, so every sidecar sharing the Redis
 * gets distinct, increasing ids (as durable as the server's persistence). Integer replies are
 * read as strings so ids past 2^53 stay exact. Like `state.redis`, commands are never queued
 * while disconnected: a call during an outage fails at once and hands out nothing.
 */
import type { Redis } from 'ioredis';
import type * as IoRedis from 'ioredis';
import { lazy } from '../../../lazy.js';
import { ComponentBackendError, ComponentError } from '../../errors.js';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { checkSequencerKey } from '../key.js';
import type { NextIdRequest, Sequencer } from '../store.js';
import { redisSequencerMetadata, type RedisSequencerMetadata } from './config.js';

const ioredis = lazy<typeof IoRedis>('ioredis');

export class RedisSequencer implements Sequencer {
  private readonly client: Redis;
  private readonly prefix: string;
  private readonly where: string;
  private readonly connectTimeoutMs: number;
  private lastError = '';

  constructor(m: RedisSequencerMetadata, ctx: ComponentContext) {
    const i = m.redisHost.lastIndexOf(':');
    this.where = m.redisHost;
    this.prefix = m.keyPrefix;
    this.connectTimeoutMs = m.connectTimeoutMs;
    this.client = new (ioredis().Redis)({
      host: m.redisHost.slice(0, i),
      port: Number(m.redisHost.slice(i + 1)),
      username: m.redisUsername,
      password: m.redisPassword,
      db: m.redisDB,
      tls: m.enableTLS ? {} : undefined,
      stringNumbers: true,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: m.timeoutMs,
      connectTimeout: Math.min(m.connectTimeoutMs, 10_000),
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    let reported = false;
    this.client.on('ready', () => {
      if (reported) ctx.logger.info({ component: ctx.name, redis: this.where }, 'sequencer.redis: connected again');
      reported = false;
      this.lastError = '';
    });
    this.client.on('error', (e: Error) => {
      this.lastError = e.message;
      if (reported) return;
      reported = true;
      ctx.logger.warn({ component: ctx.name, redis: this.where, error: e.message }, 'sequencer.redis: connection failed; retrying');
    });
  }

  // === impl Component ===

  async init(): Promise<void> {
    if (this.client.status === 'ready') return;
    if (this.client.status === 'wait' || this.client.status === 'end') this.client.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.client.off('ready', done);
        reject(new ComponentBackendError(`cannot connect to Redis at ${this.where}: ${this.lastError || 'timed out'}`));
      }, this.connectTimeoutMs);
      this.client.once('ready', done);
    });
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }

  status(): { ready: boolean; error?: string } {
    const ready = this.client.status === 'ready';
    return ready ? { ready } : { ready, error: `Redis at ${this.where} is ${this.client.status}${this.lastError ? `: ${this.lastError}` : ''}` };
  }

  features(): readonly string[] {
    return [];
  }

  // === impl Sequencer ===

  async nextId(req: NextIdRequest): Promise<bigint> {
    const key = checkSequencerKey(req.key);
    try {
      // With stringNumbers the reply is the decimal string, whatever the typings say.
      return BigInt(String(await this.client.incr(this.prefix + key)));
    } catch (e) {
      if (e instanceof ComponentError) throw e;
      throw new ComponentBackendError(`Redis at ${this.where}: ${(e as Error).message}`, e);
    }
  }
}

export const redisSequencer: ComponentDefinition<RedisSequencer, RedisSequencerMetadata> = {
  type: 'sequencer.redis',
  block: 'sequencer',
  version: 'v1',
  metadataSchema: redisSequencerMetadata,
  create: (m, ctx) => new RedisSequencer(m, ctx),
};

/**
 * `sequencer.redis`: one counter per key, advanced with INCR, so every sidecar sharing the Redis
 * gets distinct, increasing ids (as durable as the server's persistence). Integer replies are
 * read as strings so ids past 2^53 stay exact. Like `state.redis`, commands are never queued
 * while disconnected: a call during an outage fails at once and hands out nothing.
 */
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { RedisComponent, RedisConnection } from '../../redis/connection.js';
import { checkSequencerKey } from '../key.js';
import type { NextIdRequest, Sequencer } from '../store.js';
import { redisSequencerMetadata, type RedisSequencerMetadata } from './config.js';

export class RedisSequencer extends RedisComponent implements Sequencer {
  private readonly prefix: string;

  constructor(m: RedisSequencerMetadata, ctx: ComponentContext) {
    super(new RedisConnection(m, 'sequencer.redis', ctx, { client: { stringNumbers: true } }));
    this.prefix = m.keyPrefix;
  }

  features(): readonly string[] {
    return [];
  }

  // === impl Sequencer ===

  async nextId(req: NextIdRequest): Promise<bigint> {
    const key = checkSequencerKey(req.key);
    // With stringNumbers the reply is the decimal string, whatever the typings say.
    return BigInt(String(await this.conn.call(() => this.conn.client.incr(this.prefix + key))));
  }
}

export const redisSequencer: ComponentDefinition<RedisSequencer, RedisSequencerMetadata> = {
  type: 'sequencer.redis',
  block: 'sequencer',
  version: 'v1',
  metadataSchema: redisSequencerMetadata,
  create: (m, ctx) => new RedisSequencer(m, ctx),
};

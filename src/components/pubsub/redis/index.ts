/**
 * `pubsub.redis`: Redis Streams, as Dapr's Redis pub/sub uses them. A topic is the stream
 * `<keyPrefix><topic>`; publish is XADD (fields data, contentType, metadata) and resolves on its
 * reply. A consumer group is a Redis consumer group created at the start of the stream (so a new
 * group gets what the stream still holds); each subscription is one consumer of it, reading with
 * XREADGROUP BLOCK on a connection of its own.
 *
 * SUCCESS and DROP XACK; RETRY leaves the entry pending. Every `redeliverInterval` a
 * subscription claims the group's entries pending for longer than `processingTimeout` (XPENDING
 * IDLE for their delivery counters, then XCLAIM with the same idle bound so two claimers never
 * both win), which covers RETRY, handlers that never answered and subscribers that went away.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { ComponentBackendError } from '../../errors.js';
import { RedisComponent, RedisConnection } from '../../redis/connection.js';
import { Slots, checkPublish, checkSubscribe, decodeMetadata, deliver, encodeMetadata, sleep } from '../common.js';
import type { Message, MessageHandler, PubSub, PubSubFeature, PublishRequest, SubscribeRequest, Subscription } from '../pubsub.js';
import { redisPubSubMetadata, type RedisPubSubMetadata } from './config.js';

const FEATURES: readonly PubSubFeature[] = ['DURABLE', 'CONSUMER_GROUPS'];
/** How long one XREADGROUP blocks; close() does not wait for it (it drops the connection). */
const BLOCK_MS = 5000;
/** Pause after a failed read before the next try (the client reconnects meanwhile). */
const RETRY_READ_MS = 500;

type Entry = [id: Buffer, fields: Buffer[] | null];

interface SubscriptionTarget {
  readonly key: string;
  readonly group: string;
  readonly consumer: string;
  readonly topic: string;
}

class RedisSubscription implements Subscription {
  private closed = false;
  private readonly abort = new AbortController();
  private readonly slots: Slots;
  /** Entry ids in this subscription's handler: never reclaimed by itself. */
  private readonly inflight = new Set<string>();
  private readonly running: Promise<void>;
  private failing = false;

  constructor(
    private readonly bus: RedisPubSub,
    private readonly reader: Redis,
    private readonly t: SubscriptionTarget,
    private readonly handler: MessageHandler,
  ) {
    this.slots = new Slots(bus.m.concurrency);
    this.running = this.loop();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.abort.abort();
    this.slots.releaseAll();
    this.reader.disconnect();
    await this.running;
    await this.forgetConsumer();
  }

  /**
   * One loop both reads new entries and, every `redeliverInterval`, reclaims stale ones, so the
   * two share the subscription's slots and a blocking read never delays a reclaim.
   */
  private async loop(): Promise<void> {
    const { m } = this.bus;
    let nextReclaim = Date.now() + m.redeliverInterval;
    while (!this.closed) {
      const n = await this.slots.take(m.concurrency);
      if (this.closed) return;
      let used = 0;
      try {
        if (Date.now() >= nextReclaim) {
          used = await this.reclaim(n);
          nextReclaim = Date.now() + m.redeliverInterval;
        } else {
          used = await this.read(n, Math.max(1, Math.min(BLOCK_MS, nextReclaim - Date.now())));
        }
        this.recovered();
      } catch (e) {
        if (this.closed) return;
        this.failed(e);
        // The stream (and so the group) was deleted: start again on a new one.
        if (/NOGROUP/.test((e as Error).message)) await this.bus.createGroup(this.t.key, this.t.group).catch(() => undefined);
        await sleep(RETRY_READ_MS, this.abort.signal);
      } finally {
        this.slots.release(n - used);
      }
    }
  }

  /** New entries for this consumer, at most `n`; returns how many went to the handler. */
  private async read(n: number, blockMs: number): Promise<number> {
    const { key, group, consumer } = this.t;
    const reply = await this.reader.callBuffer('XREADGROUP', 'GROUP', group, consumer, 'COUNT', n, 'BLOCK', blockMs, 'STREAMS', key, '>');
    const entries = firstStreamEntries(reply);
    for (const [id, fields] of entries) this.dispatch(id.toString(), fields ?? [], 1);
    return entries.length;
  }

  /** Claims up to `n` entries of the group left unanswered for `processingTimeout`; returns how many went to the handler. */
  private async reclaim(n: number): Promise<number> {
    const { client, m } = this.bus;
    const { key, group, consumer } = this.t;
    const pending = (await client.xpending(key, group, 'IDLE', m.processingTimeout, '-', '+', n + this.inflight.size)) as [string, string, number, number][];
    const stale = pending.filter(([id]) => !this.inflight.has(id)).slice(0, n);
    if (stale.length === 0) return 0;
    const counts = new Map(stale.map(([id, , , deliveries]) => [id, Number(deliveries)]));
    const claimed = (await client.callBuffer('XCLAIM', key, group, consumer, m.processingTimeout, ...counts.keys())) as (Entry | null)[];
    let used = 0;
    for (const e of claimed) {
      if (!e) continue;
      const id = e[0].toString();
      // Trimmed away while pending: nothing left to deliver.
      if (!e[1]) {
        await client.xack(key, group, id);
        continue;
      }
      used++;
      this.dispatch(id, e[1], (counts.get(id) ?? 1) + 1);
    }
    return used;
  }

  /** Starts the handler (the caller holds a slot for it) and answers Redis when it is done. */
  private dispatch(id: string, fields: Buffer[], deliveryCount: number): void {
    this.inflight.add(id);
    void deliver(this.handler, toMessage(id, this.t.topic, fields, deliveryCount)).then(async (r) => {
      this.slots.release();
      try {
        // Also after close: the app did handle it, so nobody needs it again.
        if (r !== 'RETRY') await this.bus.client.xack(this.t.key, this.t.group, id);
      } catch (e) {
        this.bus.ctx.logger.warn({ component: this.bus.ctx.name, id, error: (e as Error).message }, 'pubsub.redis: XACK failed; the message will be delivered again');
      } finally {
        this.inflight.delete(id);
      }
    });
  }

  /** Removes this consumer from the group when it holds no pending entry (else others reclaim them first). */
  private async forgetConsumer(): Promise<void> {
    const { client } = this.bus;
    const { key, group, consumer } = this.t;
    try {
      if (this.inflight.size > 0) return;
      const held = await client.xpending(key, group, '-', '+', 1, consumer);
      if (held.length === 0) await client.xgroup('DELCONSUMER', key, group, consumer);
    } catch {
      // Redis is away: the idle consumer name is harmless.
    }
  }

  private failed(e: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.bus.ctx.logger.warn({ component: this.bus.ctx.name, topic: this.t.topic, error: (e as Error).message }, 'pubsub.redis: reading the stream failed; retrying');
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.bus.ctx.logger.info({ component: this.bus.ctx.name, topic: this.t.topic }, 'pubsub.redis: reading the stream again');
  }
}

export class RedisPubSub extends RedisComponent implements PubSub {
  readonly client: Redis;
  private readonly subs = new Set<RedisSubscription>();

  constructor(
    readonly m: RedisPubSubMetadata,
    readonly ctx: ComponentContext,
  ) {
    // Stream replies read with callBuffer keep RESP2's shapes.
    super(new RedisConnection(m, 'pubsub.redis', ctx, { client: { connectionName: 'capa-pubsub', protocol: 2 } }));
    this.client = this.conn.client;
  }

  // === impl Component ===

  override async close(): Promise<void> {
    await Promise.all([...this.subs].map((s) => s.close()));
    this.subs.clear();
    await super.close();
  }

  // === impl PubSub ===

  features(): readonly PubSubFeature[] {
    return FEATURES;
  }

  async publish(req: PublishRequest): Promise<void> {
    checkPublish(req);
    const args: (string | Buffer | number)[] = [this.key(req.topic)];
    if (this.m.maxLenApprox > 0) args.push('MAXLEN', '~', this.m.maxLenApprox);
    args.push('*', 'data', req.data);
    if (req.contentType) args.push('contentType', req.contentType);
    const meta = encodeMetadata(req.metadata);
    if (meta) args.push('metadata', meta);
    await this.conn.call(() => this.client.call('XADD', ...args), `publish to ${req.topic}`);
  }

  async subscribe(req: SubscribeRequest, handler: MessageHandler): Promise<Subscription> {
    checkSubscribe(req);
    const key = this.key(req.topic);
    const group = this.m.consumerID ?? req.consumerGroup;
    await this.conn.call(() => this.createGroup(key, group), `subscribe to ${req.topic}`);
    const consumer = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
    const reader = this.client.duplicate({ connectionName: 'capa-pubsub-reader', commandTimeout: BLOCK_MS + this.m.timeoutMs, lazyConnect: true });
    reader.on('error', () => undefined); // reported by the subscription's loop
    try {
      await reader.connect();
    } catch (e) {
      reader.disconnect();
      throw new ComponentBackendError(`Redis at ${this.conn.where}: subscribe to ${req.topic}: ${(e as Error).message}`, e);
    }
    const sub = new RedisSubscription(this, reader, { key, group, consumer, topic: req.topic }, handler);
    this.subs.add(sub);
    return {
      close: async () => {
        this.subs.delete(sub);
        await sub.close();
      },
    };
  }

  // === internals ===

  /** The group starts at the stream's beginning; one that exists already is kept as it is. */
  async createGroup(key: string, group: string): Promise<void> {
    try {
      await this.client.xgroup('CREATE', key, group, '0', 'MKSTREAM');
    } catch (e) {
      if (!/BUSYGROUP/.test((e as Error).message)) throw e;
    }
  }

  private key(topic: string): string {
    return this.m.keyPrefix + topic;
  }
}

/**
 * The entries of the one stream an XREADGROUP asked for: RESP2 replies [[key, entries]], a
 * RESP3 map read raw comes as [key, entries]; null when the block timed out.
 */
function firstStreamEntries(reply: unknown): Entry[] {
  if (!Array.isArray(reply) || reply.length === 0) return [];
  const pair = Array.isArray(reply[0]) ? (reply[0] as unknown[]) : reply;
  return Array.isArray(pair[1]) ? (pair[1] as Entry[]) : [];
}

function toMessage(id: string, topic: string, fields: Buffer[], deliveryCount: number): Message {
  let data: Buffer = Buffer.alloc(0);
  let contentType: string | undefined;
  let metadata: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]!.toString();
    if (name === 'data') data = fields[i + 1]!;
    else if (name === 'contentType') contentType = fields[i + 1]!.toString();
    else if (name === 'metadata') metadata = decodeMetadata(fields[i + 1]!.toString());
  }
  return { id, topic, data, contentType, metadata, deliveryCount };
}

export const redisPubSub: ComponentDefinition<RedisPubSub, RedisPubSubMetadata> = {
  type: 'pubsub.redis',
  block: 'pubsub',
  version: 'v1',
  metadataSchema: redisPubSubMetadata,
  create: (m, ctx) => new RedisPubSub(m, ctx),
};

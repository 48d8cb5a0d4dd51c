/**
 * `pubsub.jetstream`: NATS JetStream. One stream per component (`streamName`, default
 * `capa-<component name>`) takes the subjects `<subjectPrefix>.>`; topic T is published on
 * `<subjectPrefix>.T` and publish resolves on the server's PubAck (stored). Content type and
 * metadata travel as headers.
 *
 * A consumer group is a durable pull consumer per (group, topic) with explicit acks, filtered to
 * the topic's subject, so subscriptions of one group share messages and each group keeps its own
 * position (a new group starts with `deliverPolicy`, default every stored message). SUCCESS and
 * DROP ack; RETRY naks with `redeliveryDelay`; a message still unanswered when its subscription
 * closes is nak'ed at once so another member of the group gets it; deliveryCount is JetStream's.
 */
import { createHash } from 'node:crypto';
import type * as Nats from 'nats';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg, MsgHdrs, NatsConnection } from 'nats';
import { SlotSet } from '../../../inflight.js';
import { lazy } from '../../../lazy.js';
import type { ComponentContext, ComponentDefinition } from '../../registry.js';
import { ComponentBackendError, ComponentRequestError } from '../../errors.js';
import { Slots, checkPublish, checkSubscribe, decodeMetadata, deliver, encodeMetadata } from '../common.js';
import type { Message, MessageHandler, PubSub, PubSubFeature, PublishRequest, SubscribeRequest, Subscription } from '../pubsub.js';
import { JETSTREAM_SUBJECT, jetstreamPubSubMetadata, type JetStreamPubSubMetadata } from './config.js';
import { JetStreamPublisher } from './publisher.js';
import { WriteBatch } from './writes.js';

const nats = lazy<typeof Nats>('nats');

const FEATURES: readonly PubSubFeature[] = ['DURABLE', 'CONSUMER_GROUPS'];
const H_CONTENT_TYPE = 'Content-Type';
const H_METADATA = 'Capa-Metadata';
/** JetStream API error codes. */
const STREAM_NOT_FOUND = 10059;
const CONSUMER_NOT_FOUND = 10014;
/** Distinct (content type, metadata) header sets kept encoded; a publisher rarely has more. */
const HEADER_CACHE_SIZE = 64;

interface Conn {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  /** Publishes and acks of one event-loop turn leave in one socket write. */
  readonly writes: WriteBatch;
  readonly publisher: JetStreamPublisher;
}

class JetStreamSubscription implements Subscription {
  private closed = false;
  private readonly slots: Slots;
  /** Messages in the handler, answered at close if the handler has not (a SlotSet: see src/inflight.ts). */
  private readonly inflight = new SlotSet<JsMsg>();
  private readonly loop: Promise<void>;

  constructor(
    private readonly msgs: ConsumerMessages,
    private readonly topic: string,
    private readonly handler: MessageHandler,
    private readonly m: JetStreamPubSubMetadata,
    private readonly writes: WriteBatch,
  ) {
    this.slots = new Slots(m.concurrency);
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    for await (const jm of this.msgs) {
      if (!this.closed) await this.slots.acquire();
      // Buffered by the client but never handed to the app: back to the group at once.
      if (this.closed) {
        jm.nak();
        continue;
      }
      const slot = this.inflight.add(jm);
      void deliver(this.handler, toMessage(jm, this.topic)).then((r) => {
        this.slots.release();
        if (!this.inflight.remove(slot, jm)) return; // nak'ed by close()
        if (r === 'RETRY') this.writes.add(() => jm.nak(this.m.redeliveryDelay));
        else this.writes.add(() => jm.ack());
      });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.slots.releaseAll();
    await this.msgs.close().catch(() => undefined);
    await this.loop.catch(() => undefined);
    // Hand unanswered messages to the group now rather than after ackWait. (nats-server 2.9
    // reports the next delivery of such a message with deliveryCount 1 again when it first
    // tries this subscription's expired pull request; newer servers count it.)
    for (const jm of this.inflight.values()) jm.nak();
    this.inflight.clear();
  }
}

export class JetStreamPubSub implements PubSub {
  private conn: Conn | undefined;
  private connecting: Promise<Conn> | undefined;
  private connected = false;
  private lastError = '';
  private readonly subs = new Set<JetStreamSubscription>();
  private readonly stream: string;
  private readonly prefix: string;
  private readonly headerCache = new Map<string, MsgHdrs | undefined>();

  constructor(
    private readonly m: JetStreamPubSubMetadata,
    private readonly ctx: ComponentContext,
  ) {
    this.stream = m.streamName ?? `capa-${ctx.name.replace(/\./g, '_')}`;
    this.prefix = m.subjectPrefix ?? this.stream;
  }

  // === impl Component ===

  async init(): Promise<void> {
    if (this.conn && !this.conn.nc.isClosed()) return;
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    this.conn = await this.connecting;
  }

  async close(): Promise<void> {
    await Promise.all([...this.subs].map((s) => s.close()));
    this.subs.clear();
    const conn = this.conn;
    this.conn = undefined;
    this.connected = false;
    if (!conn) return;
    conn.writes.flush(); // acks still queued for this turn go out before the connection closes
    conn.publisher.close(new Error('the component was closed'));
    await conn.nc.close().catch(() => undefined);
  }

  status(): { ready: boolean; error?: string } {
    if (this.conn && this.connected && !this.conn.nc.isClosed()) return { ready: true };
    return { ready: false, error: `NATS at ${this.m.natsURL} is not connected${this.lastError ? `: ${this.lastError}` : ''}` };
  }

  // === impl PubSub ===

  features(): readonly PubSubFeature[] {
    return FEATURES;
  }

  async publish(req: PublishRequest): Promise<void> {
    checkPublish(req);
    const subject = this.subject(req.topic);
    if (req.contentType && /[\r\n]/.test(req.contentType)) throw new ComponentRequestError('contentType must not contain line breaks');
    const { publisher } = this.live();
    try {
      await publisher.publish(subject, req.data, this.headers(req.contentType, encodeMetadata(req.metadata)));
    } catch (e) {
      throw new ComponentBackendError(`NATS JetStream at ${this.m.natsURL}: publish to ${subject} failed: ${(e as Error).message}`, e);
    }
  }

  async subscribe(req: SubscribeRequest, handler: MessageHandler): Promise<Subscription> {
    checkSubscribe(req);
    const subject = this.subject(req.topic);
    const { js, jsm, writes } = this.live();
    const durable = durableName(this.m.durableName ?? req.consumerGroup, req.topic);
    try {
      await this.ensureConsumer(jsm, durable, subject);
      const consumer = await js.consumers.get(this.stream, durable);
      const msgs = await consumer.consume({ max_messages: this.m.concurrency });
      const sub = new JetStreamSubscription(msgs, req.topic, handler, this.m, writes);
      this.subs.add(sub);
      return {
        close: async () => {
          this.subs.delete(sub);
          await sub.close();
        },
      };
    } catch (e) {
      throw new ComponentBackendError(`NATS JetStream at ${this.m.natsURL}: cannot subscribe to ${req.topic} as ${durable}: ${(e as Error).message}`, e);
    }
  }

  // === impl internals ===

  private async connect(): Promise<Conn> {
    let nc: NatsConnection;
    try {
      nc = await nats().connect({
        servers: this.m.natsURL.split(',').map((s) => s.trim()),
        name: this.m.name,
        token: this.m.token,
        timeout: this.m.connectTimeout,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 1000,
      });
    } catch (e) {
      this.lastError = (e as Error).message;
      throw new ComponentBackendError(`cannot connect to NATS at ${this.m.natsURL}: ${(e as Error).message}`, e);
    }
    try {
      const jsm = await nc.jetstreamManager({ timeout: this.m.publishTimeout });
      await this.ensureStream(jsm);
      this.watch(nc);
      const writes = new WriteBatch();
      const publisher = new JetStreamPublisher(nc, writes, this.m.publishTimeout, nats().createInbox());
      return { nc, jsm, js: nc.jetstream({ timeout: this.m.publishTimeout }), writes, publisher };
    } catch (e) {
      await nc.close().catch(() => undefined);
      this.lastError = (e as Error).message;
      throw new ComponentBackendError(`NATS at ${this.m.natsURL}: cannot set up JetStream stream ${this.stream}: ${(e as Error).message}`, e);
    }
  }

  /** Keeps `connected` current and logs each outage once. */
  private watch(nc: NatsConnection): void {
    this.connected = true;
    this.lastError = '';
    const where = { component: this.ctx.name, nats: this.m.natsURL };
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === nats().Events.Disconnect) {
          this.connected = false;
          this.lastError = 'connection lost; reconnecting';
          this.ctx.logger.warn(where, 'pubsub.jetstream: connection lost; reconnecting');
        } else if (s.type === nats().Events.Reconnect) {
          this.connected = true;
          this.lastError = '';
          this.ctx.logger.info(where, 'pubsub.jetstream: connected again');
        }
      }
    })().catch(() => undefined);
    void nc.closed().then((e) => {
      this.connected = false;
      if (e) this.lastError = e.message;
    });
  }

  /** Creates the stream, or adds this component's subjects to an existing one. */
  private async ensureStream(jsm: JetStreamManager): Promise<void> {
    const subjects = `${this.prefix}.>`;
    try {
      const info = await jsm.streams.info(this.stream);
      if (!info.config.subjects?.includes(subjects)) {
        await jsm.streams.update(this.stream, { ...info.config, subjects: [...(info.config.subjects ?? []), subjects] });
      }
      return;
    } catch (e) {
      if (apiCode(e) !== STREAM_NOT_FOUND) throw e;
    }
    const { StorageType, RetentionPolicy, nanos } = nats();
    await jsm.streams.add({
      name: this.stream,
      subjects: [subjects],
      retention: RetentionPolicy.Limits,
      storage: this.m.memoryStorage ? StorageType.Memory : StorageType.File,
      num_replicas: this.m.replicas,
      max_age: nanos(this.m.maxAge),
    });
  }

  private async ensureConsumer(jsm: JetStreamManager, durable: string, subject: string): Promise<void> {
    const { AckPolicy, DeliverPolicy, nanos } = nats();
    const settings = { ack_wait: nanos(this.m.ackWait), max_deliver: this.m.maxDeliver };
    try {
      const info = await jsm.consumers.info(this.stream, durable);
      if (info.config.ack_wait !== settings.ack_wait || info.config.max_deliver !== settings.max_deliver) {
        await jsm.consumers.update(this.stream, durable, settings);
      }
      return;
    } catch (e) {
      if (apiCode(e) !== CONSUMER_NOT_FOUND) throw e;
    }
    const deliver = { all: DeliverPolicy.All, new: DeliverPolicy.New, last: DeliverPolicy.Last }[this.m.deliverPolicy];
    await jsm.consumers.add(this.stream, {
      ...settings,
      durable_name: durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: deliver,
      filter_subject: subject,
    });
  }

  /** The publish headers, encoded once per distinct (content type, metadata); nats.js does not change them. */
  private headers(contentType: string | undefined, meta: string): MsgHdrs | undefined {
    if (!contentType && !meta) return undefined;
    const key = `${contentType ?? ''}\n${meta}`;
    let h = this.headerCache.get(key);
    if (h) return h;
    h = nats().headers();
    if (contentType) h.set(H_CONTENT_TYPE, contentType);
    if (meta) h.set(H_METADATA, meta);
    if (this.headerCache.size >= HEADER_CACHE_SIZE) this.headerCache.clear();
    this.headerCache.set(key, h);
    return h;
  }

  private live(): Conn {
    if (!this.conn || this.conn.nc.isClosed()) throw new ComponentBackendError(`NATS at ${this.m.natsURL}: not connected (init has not succeeded)`);
    // While reconnecting the client would buffer the publish and might store it after we gave up.
    if (!this.connected) throw new ComponentBackendError(`NATS at ${this.m.natsURL}: not connected${this.lastError ? `: ${this.lastError}` : ''}`);
    return this.conn;
  }

  private subject(topic: string): string {
    const subject = `${this.prefix}.${topic}`;
    if (!JETSTREAM_SUBJECT.test(subject)) throw new ComponentRequestError(`topic ${JSON.stringify(topic)} is not usable as a NATS subject: no whitespace, "*", ">" or empty "." parts`);
    return subject;
  }
}

function toMessage(jm: JsMsg, topic: string): Message {
  return {
    id: String(jm.seq),
    topic,
    data: Buffer.from(jm.data),
    contentType: jm.headers?.get(H_CONTENT_TYPE) || undefined,
    metadata: decodeMetadata(jm.headers?.get(H_METADATA)),
    deliveryCount: jm.info.deliveryCount,
  };
}

/**
 * A durable name per (group, topic): the readable part keeps letters, digits, '-' and '_'; the
 * hash of both keeps distinct pairs distinct whatever the sanitising merged.
 */
function durableName(group: string, topic: string): string {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60);
  const hash = createHash('sha256').update(JSON.stringify([group, topic])).digest('hex').slice(0, 10);
  return `${clean(group)}_${clean(topic)}_${hash}`;
}

function apiCode(e: unknown): number | undefined {
  return (e as { api_error?: { err_code?: number } }).api_error?.err_code;
}

export const jetstreamPubSub: ComponentDefinition<JetStreamPubSub, JetStreamPubSubMetadata> = {
  type: 'pubsub.jetstream',
  block: 'pubsub',
  version: 'v1',
  metadataSchema: jetstreamPubSubMetadata,
  create: (m, ctx) => new JetStreamPubSub(m, ctx),
};

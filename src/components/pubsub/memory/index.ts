/**
 * `pubsub.memory`: the embedded default, in the sidecar process. At-least-once while the process
 * lives: a message stays with its consumer group until a handler answers SUCCESS or DROP; RETRY
 * (or a rejection) puts it back after `redeliveryDelay`. Each group hands a message to one of its
 * subscriptions, round robin. Not durable: a group exists while it has subscriptions, so what is
 * published while a group has none is not kept for it.
 */
import type { ComponentDefinition } from '../../registry.js';
import { SlotSet } from '../../../inflight.js';
import { ComponentBackendError } from '../../errors.js';
import { checkPublish, checkSubscribe, deliver } from '../common.js';
import type { Message, MessageHandler, PubSub, PubSubFeature, PublishRequest, SubscribeRequest, Subscription } from '../pubsub.js';
import { memoryPubSubMetadata, type MemoryPubSubMetadata } from './config.js';

const FEATURES: readonly PubSubFeature[] = ['CONSUMER_GROUPS'];

class Group {
  /** False once its last subscription closed: pending redeliveries then go nowhere. */
  live = true;
  readonly subs: MemorySubscription[] = [];
  readonly queue: Message[] = [];
  /** Round-robin position in `subs`. */
  next = 0;
}

class MemorySubscription implements Subscription {
  /** Messages in the handler (a SlotSet, not a Set: src/inflight.ts). */
  readonly inflight = new SlotSet<Message>();

  constructor(
    private readonly bus: MemoryPubSub,
    readonly group: Group,
    private readonly handler: MessageHandler,
  ) {}

  run(msg: Message): void {
    const slot = this.inflight.add(msg);
    void deliver(this.handler, msg).then((r) => {
      // Already handed back by close(): a late answer changes nothing.
      if (!this.inflight.remove(slot, msg)) return;
      if (r === 'RETRY') this.bus.redeliverLater(this.group, msg);
      this.bus.pump(this.group);
    });
  }

  async close(): Promise<void> {
    this.bus.detach(this);
  }
}

export class MemoryPubSub implements PubSub {
  /** topic → consumer group → group. */
  private readonly topics = new Map<string, Map<string, Group>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private seq = 0;
  private closed = false;

  constructor(private readonly m: MemoryPubSubMetadata) {}

  async init(): Promise<void> {
    this.closed = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const groups of this.topics.values()) for (const g of groups.values()) g.live = false;
    this.topics.clear();
  }

  features(): readonly PubSubFeature[] {
    return FEATURES;
  }

  async publish(req: PublishRequest): Promise<void> {
    checkPublish(req);
    if (this.closed) throw new ComponentBackendError('pubsub.memory: the component is closed');
    const base = {
      id: String(++this.seq),
      topic: req.topic,
      data: Buffer.from(req.data),
      contentType: req.contentType,
      metadata: { ...req.metadata },
      deliveryCount: 1,
    };
    for (const group of this.topics.get(req.topic)?.values() ?? []) {
      group.queue.push({ ...base });
      this.pump(group);
    }
  }

  async subscribe(req: SubscribeRequest, handler: MessageHandler): Promise<Subscription> {
    checkSubscribe(req);
    if (this.closed) throw new ComponentBackendError('pubsub.memory: the component is closed');
    let groups = this.topics.get(req.topic);
    if (!groups) this.topics.set(req.topic, (groups = new Map()));
    let group = groups.get(req.consumerGroup);
    if (!group) groups.set(req.consumerGroup, (group = new Group()));
    const sub = new MemorySubscription(this, group, handler);
    group.subs.push(sub);
    return sub;
  }

  // === internals used by MemorySubscription ===

  /** Hands queued messages to subscriptions with a free slot, round robin. */
  pump(group: Group): void {
    while (group.live && group.queue.length > 0) {
      const sub = this.pick(group);
      if (!sub) return;
      sub.run(group.queue.shift()!);
    }
  }

  redeliverLater(group: Group, msg: Message): void {
    if (!group.live) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!group.live) return;
      group.queue.push({ ...msg, deliveryCount: msg.deliveryCount + 1 });
      this.pump(group);
    }, this.m.redeliveryDelay);
    this.timers.add(t);
  }

  /** A closed subscription's unanswered messages go back to its group at once. */
  detach(sub: MemorySubscription): void {
    const { group } = sub;
    const i = group.subs.indexOf(sub);
    if (i < 0) return;
    group.subs.splice(i, 1);
    const unanswered = sub.inflight.values().map((msg) => ({ ...msg, deliveryCount: msg.deliveryCount + 1 }));
    sub.inflight.clear();
    if (group.subs.length === 0) {
      this.forget(group);
      return;
    }
    group.queue.unshift(...unanswered);
    this.pump(group);
  }

  private pick(group: Group): MemorySubscription | undefined {
    const n = group.subs.length;
    for (let k = 0; k < n; k++) {
      const sub = group.subs[(group.next + k) % n]!;
      if (sub.inflight.size < this.m.concurrency) {
        group.next = (group.next + k + 1) % n;
        return sub;
      }
    }
    return undefined;
  }

  private forget(group: Group): void {
    group.live = false;
    for (const [topic, groups] of this.topics) {
      for (const [name, g] of groups) if (g === group) groups.delete(name);
      if (groups.size === 0) this.topics.delete(topic);
    }
  }
}

export const memoryPubSub: ComponentDefinition<MemoryPubSub, MemoryPubSubMetadata> = {
  type: 'pubsub.memory',
  block: 'pubsub',
  version: 'v1',
  metadataSchema: memoryPubSubMetadata,
  create: (m) => new MemoryPubSub(m),
};

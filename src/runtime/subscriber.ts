/**
 * One app subscription's message handler: backend Message → TopicEvent → the app (through an
 * AppChannel, HTTP or gRPC) → what the backend is told.
 *
 *   app SUCCESS                          → SUCCESS (ack)
 *   app RETRY / rejection / unreachable  → RETRY (the backend redelivers) until the message's
 *                                          `maxDeliveries`th delivery, then dead-letter
 *   app DROP (HTTP 404 too)              → dead-letter at once
 *   expired (`expiration` is past)       → not delivered: dead-letter, else acknowledged
 *   routing rules, none matched, no
 *   default path                         → not delivered: dead-letter, else acknowledged
 *
 * The last two are Dapr's order and outcome (pkg/runtime/subscription/subscription.go): the
 * expiration is checked first, then the routing rules (./routing-rules.ts) pick the path; both
 * are logged at debug only, since a TTL or a rule set exists to have messages skipped. An event
 * without `expiration` costs two property reads here, and one without rules none.
 *
 * Dead-lettering publishes the stored bytes unchanged to the subscription's `deadLetterTopic` on
 * the same pubsub, then acknowledges; when that publish fails the message is RETRIED (nothing is
 * acknowledged that was not stored). Without a dead-letter topic the message is logged and dropped.
 * `maxDeliveries` comes from the subscription metadata (default 5: Dapr's default resiliency
 * retries a few times before giving up; 5 keeps a poison message from blocking a topic for long).
 */
import type { Logger } from 'pino';
import type { DeliveryResult, Message, MessageHandler, PubSub } from '../components/pubsub/pubsub.js';
import type { AppChannel, AppDeliveryResult, AppSubscription, TopicEvent } from './app-channel.js';
import { isRawPayload, topicEventOf } from './cloudevents.js';
import { EXPIRATION_KEY, hasExpired } from './message-ttl.js';
import { NO_INGRESS_COUNTERS, type IngressCounters } from './pubsub-metrics.js';
import { firstMatch } from './routing-rules.js';

export const DEFAULT_MAX_DELIVERIES = 5;

export interface SubscriberOptions {
  readonly pubsubName: string;
  readonly pubsub: PubSub;
  readonly subscription: AppSubscription;
  readonly channel: AppChannel;
  readonly logger: Logger;
  /** `capa_pubsub_ingress_total` for this subscription (./pubsub-metrics.ts); none counted when absent. */
  readonly counters?: IngressCounters;
}

/** The subscription's `maxDeliveries` metadata (an integer ≥ 1), else the default. */
export function maxDeliveriesOf(sub: AppSubscription, logger?: Logger): number {
  const raw = sub.metadata.maxDeliveries;
  if (raw === undefined || raw === '') return DEFAULT_MAX_DELIVERIES;
  const n = Number(raw);
  if (Number.isInteger(n) && n >= 1) return n;
  logger?.warn({ pubsub: sub.pubsubName, topic: sub.topic, maxDeliveries: raw, using: DEFAULT_MAX_DELIVERIES }, 'subscription metadata maxDeliveries must be an integer >= 1; using the default');
  return DEFAULT_MAX_DELIVERIES;
}

export function createSubscriptionHandler(opts: SubscriberOptions): MessageHandler {
  const { subscription: sub, logger } = opts;
  const max = maxDeliveriesOf(sub, logger);
  const raw = isRawPayload(sub.metadata);
  const rules = sub.rules !== undefined && sub.rules.length > 0 ? sub.rules : undefined;
  // The subscription as delivered through each rule: made once, so routing allocates nothing.
  const routed = rules?.map((r): AppSubscription => ({ ...sub, route: r.path }));
  const count = opts.counters ?? NO_INGRESS_COUNTERS;
  return async (msg: Message): Promise<DeliveryResult> => {
    const event = topicEventOf({ data: msg.data, topic: msg.topic, pubsubName: opts.pubsubName, rawPayload: raw, metadata: msg.metadata });
    // A raw payload has no envelope to carry it: its expiration is in the message metadata.
    const expiration = event.envelope.expiration ?? msg.metadata[EXPIRATION_KEY];
    if (expiration !== undefined && hasExpired(expiration)) {
      count.expired.inc();
      return notDelivered(opts, msg, event.id, `it expired at ${String(expiration)}`);
    }
    let target = sub;
    if (rules !== undefined) {
      const i = firstMatch(rules, event.envelope, (rule, reason) => ruleFailed(opts, event.id, rule, reason));
      if (i >= 0) target = routed![i]!;
      else if (sub.route === '') {
        count.unrouted.inc();
        return notDelivered(opts, msg, event.id, 'no routing rule matched it and the subscription has no default path');
      }
    }
    const result = await deliver(opts, target, event, msg);
    if (result === 'SUCCESS') {
      count.success.inc();
      return 'SUCCESS';
    }
    if (result === 'RETRY' && msg.deliveryCount < max) {
      count.retry.inc();
      return 'RETRY';
    }
    const why = result === 'DROP' ? 'the app dropped it' : `delivery ${msg.deliveryCount} of ${max} failed`;
    const final = await deadLetter(opts, msg, event.id, why);
    // A dead-letter publish that failed leaves the message for redelivery.
    (final === 'RETRY' ? count.retry : count.drop).inc();
    return final;
  };
}

async function deliver(opts: SubscriberOptions, target: AppSubscription, event: TopicEvent, msg: Message): Promise<AppDeliveryResult> {
  try {
    return await opts.channel.deliver(target, event);
  } catch (e) {
    opts.logger.warn({ pubsub: opts.pubsubName, topic: msg.topic, id: event.id, deliveryCount: msg.deliveryCount, error: (e as Error).message }, 'pub/sub delivery to the app failed; will retry');
    return 'RETRY';
  }
}

/** An event the app does not get (expired, unrouted): dead-lettered when the subscription has a topic for it, else acknowledged. */
function notDelivered(opts: SubscriberOptions, msg: Message, eventId: string, why: string): Promise<DeliveryResult> | DeliveryResult {
  if (opts.subscription.deadLetterTopic) return deadLetter(opts, msg, eventId, why);
  if (opts.logger.isLevelEnabled('debug')) opts.logger.debug({ pubsub: opts.pubsubName, topic: msg.topic, id: eventId, reason: why }, 'pub/sub message not delivered to the app; acknowledged');
  return 'DROP';
}

function ruleFailed(opts: SubscriberOptions, eventId: string, rule: number, reason: string): void {
  if (!opts.logger.isLevelEnabled('debug')) return;
  const { subscription: sub } = opts;
  opts.logger.debug({ pubsub: sub.pubsubName, topic: sub.topic, id: eventId, rule, match: sub.rules?.[rule]?.match, reason }, 'pub/sub routing rule failed on an event; counted as no match');
}

async function deadLetter(opts: SubscriberOptions, msg: Message, eventId: string, why: string): Promise<DeliveryResult> {
  const { subscription: sub, logger } = opts;
  const at = { pubsub: opts.pubsubName, topic: msg.topic, id: eventId, deliveryCount: msg.deliveryCount };
  if (!sub.deadLetterTopic) {
    logger.warn({ ...at, reason: why }, 'pub/sub message dropped (the subscription has no deadLetterTopic)');
    return 'DROP';
  }
  try {
    await opts.pubsub.publish({ topic: sub.deadLetterTopic, data: msg.data, contentType: msg.contentType, metadata: msg.metadata });
  } catch (e) {
    logger.error({ ...at, deadLetterTopic: sub.deadLetterTopic, error: (e as Error).message }, 'pub/sub dead-letter publish failed; the message stays for redelivery');
    return 'RETRY';
  }
  logger.info({ ...at, deadLetterTopic: sub.deadLetterTopic, reason: why }, 'pub/sub message sent to the dead-letter topic');
  return 'SUCCESS';
}

/**
 * The pub/sub building block (after Dapr's `pubsub/pubsub.go`). Backends move opaque bytes; the
 * CloudEvents envelope is made by the runtime layer (src/runtime) before `publish`, so every
 * backend carries the same bytes and the app gets the same event whatever the backend.
 *
 * Delivery semantics every backend gives (checked by test/conformance/pubsub):
 * - at-least-once: a message is acknowledged to the backend only after the handler resolved
 *   SUCCESS (or DROP, see below); a handler that rejects or resolves RETRY gets the message again
 *   (after `redeliveryDelay`), with `deliveryCount` incremented;
 * - `consumerGroup`: subscriptions with the same group on one topic share the messages (each
 *   message goes to one of them); different groups each get every message;
 * - messages published before a durable backend's subscription existed, within the backend's
 *   retention, are delivered when the group first subscribes (memory: no);
 * - `maxDeliveries` / `deadLetterTopic` are applied by the runtime's subscriber
 *   (src/runtime/subscriber.ts), not by each backend: after the last failed delivery, or on DROP, the message is published to the
 *   dead-letter topic when one is set, then acknowledged.
 */
import type { Component } from '../registry.js';

export const PUBSUB_FEATURES = ['DURABLE', 'CONSUMER_GROUPS', 'MESSAGE_TTL'] as const;
export type PubSubFeature = (typeof PUBSUB_FEATURES)[number];

export interface PublishRequest {
  readonly topic: string;
  readonly data: Buffer;
  /** Of `data` (`application/cloudevents+json` for an envelope). */
  readonly contentType?: string;
  /** Backend hints (`ttlInSeconds`, ...); unknown keys are ignored. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface Message {
  /** Backend message id (JetStream sequence, stream entry id, counter), unique per topic. */
  readonly id: string;
  readonly topic: string;
  readonly data: Buffer;
  readonly contentType?: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** 1 on the first delivery. */
  readonly deliveryCount: number;
}

/** What the app said: done; try again later; give up on this message. */
export type DeliveryResult = 'SUCCESS' | 'RETRY' | 'DROP';

/** Rejecting counts as RETRY. */
export type MessageHandler = (msg: Message) => Promise<DeliveryResult>;

export interface SubscribeRequest {
  readonly topic: string;
  /** Subscriptions sharing a group share the messages. The runtime passes the app id by default. */
  readonly consumerGroup: string;
  /** Backend hints; unknown keys are ignored. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface Subscription {
  /** Stops delivery; unacknowledged messages stay with the backend for redelivery. */
  close(): Promise<void>;
}

export interface PubSub extends Component {
  features(): readonly PubSubFeature[];
  /** Resolves once the backend has stored the message (JetStream ack, XADD reply). */
  publish(req: PublishRequest): Promise<void>;
  subscribe(req: SubscribeRequest, handler: MessageHandler): Promise<Subscription>;
}

/**
 * The sidecar's channel to its application, per `app.protocol`: HTTP (Dapr: `GET
 * /dapr/subscribe`, `POST /<route>` with a CloudEvent) or gRPC (Layotto/Dapr `AppCallback`:
 * `ListTopicSubscriptions`, `OnTopicEvent`). The subscription runner (src/runtime/subscriber.ts)
 * only talks to this interface, so both front ends deliver the same way.
 */
import type { RoutingRule } from './routing-rules.js';

export interface AppSubscription {
  readonly pubsubName: string;
  readonly topic: string;
  /**
   * HTTP path the event is POSTed to (HTTP channel); '' for gRPC. With `rules` it is the default
   * path, used when no rule matched ('' = none: such an event is not delivered). The subscriber
   * hands `deliver` the subscription as routed for the event: `route` is then the chosen path.
   */
  readonly route: string;
  /** Dapr v2 routing rules in order, compiled (HTTP apps only; Layotto's AppCallback has none). */
  readonly rules?: readonly RoutingRule[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly deadLetterTopic?: string;
}

/** A CloudEvent as delivered (JSON envelope fields + raw data bytes). */
export interface TopicEvent {
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly specVersion: string;
  readonly dataContentType: string;
  /** The event's `data`, encoded as it will be sent (JSON text for JSON data). */
  readonly data: Buffer;
  readonly topic: string;
  readonly pubsubName: string;
  /** The whole envelope (HTTP channel sends this as the body). */
  readonly envelope: Readonly<Record<string, unknown>>;
  readonly metadata: Readonly<Record<string, string>>;
}

export type AppDeliveryResult = 'SUCCESS' | 'RETRY' | 'DROP';

export interface AppChannel {
  readonly protocol: 'http' | 'grpc';
  /** The app's declared subscriptions; [] when it declares none (404 / UNIMPLEMENTED). Rejects when the app is unreachable. */
  listSubscriptions(): Promise<AppSubscription[]>;
  /** Rejecting (app down, 5xx, timeout) counts as RETRY. */
  deliver(sub: AppSubscription, event: TopicEvent): Promise<AppDeliveryResult>;
  close(): Promise<void>;
}

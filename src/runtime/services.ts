/**
 * What the two runtime front ends (Dapr HTTP on sidecar.port, Layotto gRPC on sidecar.grpcPort)
 * are given: the same building blocks and services, so neither holds logic of its own.
 * The sidecar builds one RuntimeServices and passes it to both.
 */
import type { Logger } from 'pino';
import type { ComponentManager } from '../components/manager.js';
import type { AppSubscription } from './app-channel.js';
import type { Invoker } from './invocation.js';

export interface PublishCall {
  readonly pubsubName: string;
  readonly topic: string;
  readonly data: Buffer;
  /** Content type of `data`; `application/cloudevents+json` means data already is an envelope. */
  readonly contentType?: string;
  /** `rawPayload: "true"` skips the CloudEvents envelope (Dapr); others go to the backend. */
  readonly metadata?: Readonly<Record<string, string>>;
}

export interface PubSubService {
  /** Rejects with ComponentError('not-found') naming an unknown pubsub, 'backend' when not stored. */
  publish(call: PublishCall): Promise<void>;
  /** The app's active subscriptions (for /v1.0/metadata). */
  subscriptions(): readonly AppSubscription[];
}

export interface RuntimeServices {
  readonly appId: () => string;
  readonly components: ComponentManager;
  readonly pubsub: PubSubService;
  readonly invoker: Invoker;
  readonly logger: Logger;
}

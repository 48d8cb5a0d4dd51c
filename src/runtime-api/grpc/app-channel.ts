/**
 * The runtime's channel to a gRPC app (`app.protocol: grpc`): Layotto's AppCallback service
 * (`ListTopicSubscriptions`, `OnTopicEvent`), the one the Layotto SDK's `Server` serves.
 *
 * One client (one HTTP/2 channel) is kept for the sidecar's life; every call has its own
 * deadline. Results, as Layotto's retryStrategy reads them: status SUCCESS / RETRY / DROP as the
 * app said; UNIMPLEMENTED (no handler at all) is DROP; any other failure (app down, deadline,
 * app error) rejects, which the subscriber counts as RETRY.
 */
import type * as Grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { AppChannel, AppDeliveryResult, AppSubscription, TopicEvent } from '../../runtime/app-channel.js';
import { Code } from './errors.js';
import { appCallbackServiceDefinition, grpc } from './proto.js';

export interface GrpcAppChannelOptions {
  /** Deadline of one OnTopicEvent call. */
  readonly deliverTimeoutMs?: number;
  /** Deadline of ListTopicSubscriptions. */
  readonly listTimeoutMs?: number;
}

interface TopicSubscriptionPB {
  pubsub_name: string;
  topic: string;
  metadata: Record<string, string>;
}

type Unary = (req: unknown, md: Grpc.Metadata, opts: Grpc.CallOptions, cb: (err: Grpc.ServiceError | null, res: any) => void) => void;

const RESULTS = new Set<AppDeliveryResult>(['SUCCESS', 'RETRY', 'DROP']);

export class GrpcAppChannel implements AppChannel {
  readonly protocol = 'grpc' as const;
  private readonly client: Grpc.Client & Record<string, Unary>;
  private readonly deliverTimeoutMs: number;
  private readonly listTimeoutMs: number;

  /** `address` is the app's `host:port`. */
  constructor(
    private readonly address: string,
    private readonly logger: Logger,
    opts: GrpcAppChannelOptions = {},
  ) {
    const g = grpc();
    const Client = g.makeGenericClientConstructor(appCallbackServiceDefinition(), 'AppCallback');
    this.client = new Client(address, g.credentials.createInsecure()) as unknown as Grpc.Client & Record<string, Unary>;
    this.deliverTimeoutMs = opts.deliverTimeoutMs ?? 60_000;
    this.listTimeoutMs = opts.listTimeoutMs ?? 5_000;
  }

  private call(method: string, req: unknown, timeoutMs: number): Promise<any> {
    return new Promise((resolve, reject) => {
      this.client[method]!(req, new (grpc().Metadata)(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  async listSubscriptions(): Promise<AppSubscription[]> {
    let res: { subscriptions: TopicSubscriptionPB[] };
    try {
      res = await this.call('ListTopicSubscriptions', {}, this.listTimeoutMs);
    } catch (e) {
      if ((e as Grpc.ServiceError).code === Code.UNIMPLEMENTED) return [];
      throw new Error(`gRPC app at ${this.address}: ListTopicSubscriptions failed: ${(e as Error).message}`, { cause: e });
    }
    return (res.subscriptions ?? []).map((s) => ({ pubsubName: s.pubsub_name, topic: s.topic, route: '', metadata: { ...(s.metadata ?? {}) } }));
  }

  async deliver(_sub: AppSubscription, event: TopicEvent): Promise<AppDeliveryResult> {
    const req = {
      id: event.id,
      source: event.source,
      type: event.type,
      spec_version: event.specVersion,
      data_content_type: event.dataContentType,
      data: event.data,
      topic: event.topic,
      pubsub_name: event.pubsubName,
      metadata: { ...event.metadata },
    };
    let res: { status: string };
    try {
      res = await this.call('OnTopicEvent', req, this.deliverTimeoutMs);
    } catch (e) {
      if ((e as Grpc.ServiceError).code === Code.UNIMPLEMENTED) {
        this.logger.warn({ app: this.address, pubsub: event.pubsubName, topic: event.topic, id: event.id }, 'app does not implement OnTopicEvent; event dropped');
        return 'DROP';
      }
      throw new Error(`gRPC app at ${this.address}: OnTopicEvent failed for event ${event.id}: ${(e as Error).message}`, { cause: e });
    }
    const status = res.status as AppDeliveryResult;
    if (RESULTS.has(status)) return status;
    // An unknown status (a newer app proto) is retried, as Layotto does.
    throw new Error(`gRPC app at ${this.address}: unknown OnTopicEvent status ${JSON.stringify(res.status)} for event ${event.id}`);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

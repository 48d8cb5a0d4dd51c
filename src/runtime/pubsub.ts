/**
 * The runtime's pub/sub layer, shared by both front ends: `publish` wraps the app's data in a
 * CloudEvent (src/runtime/cloudevents.ts) and hands it to the named PubSub; `start` asks the app
 * for its subscriptions through an AppChannel and subscribes each one, delivering through
 * src/runtime/subscriber.ts.
 *
 * The app usually starts after the sidecar, so the subscription list is asked for with backoff
 * (250 ms doubling to 5 s) until the app answers or the runtime closes. A subscription whose
 * backend refuses to subscribe (still connecting) is retried the same way. A subscription to a
 * pubsub that is not configured is logged and skipped: it can never work until a restart.
 *
 * `ttlInSeconds` publish metadata (./message-ttl.ts) becomes the envelope's `expiration` (or, for
 * a raw payload, the message metadata's), unless the backend declares a native MESSAGE_TTL and
 * handles it itself, as Dapr decides; an invalid value is a bad request naming it. A publish
 * without it looks up one metadata key and does nothing more.
 */
import type { Logger } from 'pino';
import type { ComponentsOf } from '../components/manager.js';
import { ComponentBackendError, ComponentError, ComponentRequestError } from '../components/errors.js';
import type { PubSub, Subscription } from '../components/pubsub/pubsub.js';
import type { AppChannel, AppSubscription } from './app-channel.js';
import { envelopeForPublish, isRawPayload } from './cloudevents.js';
import { EXPIRATION_KEY, TTL_KEY, expirationFor } from './message-ttl.js';
import type { PublishCall, PubSubService } from './services.js';
import { ingressCounters, type PubSubMetrics } from './pubsub-metrics.js';
import { createSubscriptionHandler } from './subscriber.js';

/** Distinct (component, topic, success) egress counters kept bound; more are looked up per publish. */
const EGRESS_CACHED = 1024;

export interface PubSubRuntimeOptions {
  readonly pubsubs: ComponentsOf<PubSub>;
  readonly appId: () => string;
  readonly logger: Logger;
  /** capa_pubsub_egress_total / _ingress_total (./pubsub-metrics.ts); nothing counted when absent. */
  readonly metrics?: PubSubMetrics;
  /** Backoff bounds when the app or a backend is not there yet (tests shorten them). */
  readonly retryInitialMs?: number;
  readonly retryMaxMs?: number;
}

interface Active {
  readonly sub: AppSubscription;
  readonly backend: Subscription;
}

export class PubSubRuntime implements PubSubService {
  private readonly active: Active[] = [];
  private readonly abort = new AbortController();
  private closing: Promise<void> | null = null;
  /** Bound egress counters by (success, component, topic): entries are only added, never churned. */
  private readonly egressChildren = new Map<string, { inc(): void }>();

  constructor(private readonly opts: PubSubRuntimeOptions) {}

  async publish(call: PublishCall): Promise<void> {
    const pubsub = this.pubsub(call.pubsubName);
    if (this.opts.metrics === undefined) return this.publishTo(pubsub, call);
    let ok = false;
    try {
      await this.publishTo(pubsub, call);
      ok = true;
    } finally {
      this.egress(call.pubsubName, call.topic, ok).inc();
    }
  }

  private async publishTo(pubsub: PubSub, call: PublishCall): Promise<void> {
    if (!call.topic) throw new ComponentRequestError(`topic is empty in pubsub ${call.pubsubName}`);
    let metadata = call.metadata;
    let expiration: string | undefined;
    let out: { data: Buffer; contentType: string };
    try {
      const ttl = metadata?.[TTL_KEY];
      // Checked even when the backend keeps the TTL itself: a bad value is refused the same everywhere.
      const at = ttl ? expirationFor(ttl) : undefined;
      if (at !== undefined && !pubsub.features().includes('MESSAGE_TTL')) {
        expiration = at;
        if (isRawPayload(metadata)) metadata = { ...metadata, [EXPIRATION_KEY]: at };
      }
      out = envelopeForPublish({ data: call.data, contentType: call.contentType, topic: call.topic, pubsubName: call.pubsubName, source: this.opts.appId(), metadata, expiration });
    } catch (e) {
      throw new ComponentRequestError((e as Error).message);
    }
    try {
      await pubsub.publish({ topic: call.topic, data: out.data, contentType: out.contentType, metadata });
    } catch (e) {
      if (e instanceof ComponentError) throw e;
      throw new ComponentBackendError(`error when publish to topic ${call.topic} in pubsub ${call.pubsubName}: ${(e as Error).message}`, e);
    }
  }

  /**
   * Subscribe the app's declared subscriptions. Resolves once each one is subscribed or skipped
   * (or the runtime closed); the sidecar does not wait for it. The caller keeps owning `channel`.
   */
  async start(channel: AppChannel): Promise<void> {
    const subs = await this.retrying('asking the app for its subscriptions', () => channel.listSubscriptions(), { protocol: channel.protocol });
    if (subs === undefined) return;
    this.opts.logger.info({ subscriptions: subs.map((s) => `${s.pubsubName}/${s.topic}`) }, 'app subscriptions received');
    await Promise.all(subs.map((s) => this.subscribe(s, channel)));
  }

  subscriptions(): readonly AppSubscription[] {
    return this.active.map((a) => a.sub);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.abort.abort();
      const all = this.active.splice(0);
      await Promise.all(all.map((a) => a.backend.close().catch(() => undefined)));
    })();
    return this.closing;
  }

  /** The egress counter child for (component, topic, success), bound once per pair (up to EGRESS_CACHED pairs). */
  private egress(component: string, topic: string, ok: boolean): { inc(): void } {
    const key = `${ok ? 't' : 'f'}${component}\n${topic}`;
    let c = this.egressChildren.get(key);
    if (c === undefined) {
      c = this.opts.metrics!.egress.labels({ component, topic, success: ok ? 'true' : 'false' });
      if (this.egressChildren.size < EGRESS_CACHED) this.egressChildren.set(key, c);
    }
    return c;
  }

  private pubsub(name: string): PubSub {
    const p = this.opts.pubsubs.get(name);
    if (!p) throw new ComponentError('not-found', `pubsub ${name} not found`);
    return p;
  }

  private async subscribe(sub: AppSubscription, channel: AppChannel): Promise<void> {
    const at = { pubsub: sub.pubsubName, topic: sub.topic };
    const pubsub = this.opts.pubsubs.get(sub.pubsubName);
    if (!pubsub) {
      this.opts.logger.error({ ...at, configured: this.opts.pubsubs.names() }, 'the app subscribes to a pubsub that is not configured; subscription skipped');
      return;
    }
    const m = this.opts.metrics;
    const counters = m ? ingressCounters(m, sub.pubsubName, sub.topic) : undefined;
    const handler = createSubscriptionHandler({ pubsubName: sub.pubsubName, pubsub, subscription: sub, channel, logger: this.opts.logger, counters });
    const consumerGroup = sub.metadata.consumerGroup || this.opts.appId();
    const backend = await this.retrying('subscribing', () => pubsub.subscribe({ topic: sub.topic, consumerGroup, metadata: sub.metadata }, handler), at);
    if (backend === undefined) return;
    if (this.abort.signal.aborted) {
      await backend.close().catch(() => undefined);
      return;
    }
    this.active.push({ sub, backend });
    this.opts.logger.info({ ...at, route: sub.route, consumerGroup }, 'subscribed');
  }

  /** `fn` until it resolves; undefined when the runtime closed first. Logs the first failure at warn, the rest at debug. */
  private async retrying<T>(what: string, fn: () => Promise<T>, at: Record<string, unknown>): Promise<T | undefined> {
    let delay = this.opts.retryInitialMs ?? 250;
    const max = this.opts.retryMaxMs ?? 5000;
    for (let attempt = 1; !this.abort.signal.aborted; attempt++) {
      try {
        return await fn();
      } catch (e) {
        if (this.abort.signal.aborted) return undefined;
        const level = attempt === 1 ? 'warn' : 'debug';
        this.opts.logger[level]({ ...at, attempt, retryInMs: delay, error: (e as Error).message }, `pub/sub: ${what} failed; retrying`);
        await sleep(delay, this.abort.signal);
        delay = Math.min(max, delay * 2);
      }
    }
    return undefined;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * The runtime side of the sidecar (primary process only): the components, the pub/sub layer, the
 * invoker, the channel back to the app (per `app.protocol`), and the two front ends — Dapr HTTP
 * on `sidecar.port`, Layotto gRPC on `sidecar.grpcPort` — over the same RuntimeServices.
 *
 * Hot reload (`apply`): a changed `components:` list is applied by the manager (only what changed
 * restarts); when a pubsub component changed, the app's subscriptions are made again on the new
 * backends. Ports, `app.*` and the invocation listener apply at restart (the data plane applies
 * listener changes itself).
 */
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ListeningServer } from '../admin/types.js';
import type { ComponentSpec, Snapshot } from '../config/snapshot.js';
import { ComponentManager, type ComponentStatus } from '../components/manager.js';
import { builtinComponentRegistry } from '../components/index.js';
import type { PubSub } from '../components/pubsub/pubsub.js';
import { startRuntimeHttpServer } from '../runtime-api/http/server.js';
import { GrpcAppChannel, startRuntimeGrpcServer } from '../runtime-api/grpc/index.js';
import type { AppChannel } from './app-channel.js';
import { HttpAppChannel } from './http-app-channel.js';
import { createInvoker } from './invoker.js';
import { PubSubRuntime } from './pubsub.js';
import { pubsubMetrics } from './pubsub-metrics.js';
import type { PubSubService, RuntimeServices } from './services.js';

export interface RuntimeOptions {
  readonly logger: Logger;
  /** The configuration in force (reloads change it). */
  readonly current: () => Snapshot;
  /** false while draining: healthz answers 500. */
  readonly healthy: () => boolean;
  /** Actual port of a data-plane listener (single-process mode; undefined with worker processes). */
  readonly listenerPort: (name: string) => number | undefined;
  /** Where the pub/sub counters go (./pubsub-metrics.ts); none when absent. */
  readonly registry?: Registry;
  /** Retry interval of components that fail to start (tests shorten it). */
  readonly componentRetryMs?: number;
}

export class Runtime {
  readonly components: ComponentManager;
  private pubsub: PubSubRuntime;
  private readonly channel: AppChannel | null;
  private readonly invoker: ReturnType<typeof createInvoker>;
  /** What both front ends are given. */
  private readonly services: RuntimeServices;
  private http: ListeningServer | null = null;
  private grpc: { port: number; close(): Promise<void> } | null = null;
  private pubsubSpecs = '';
  private closed = false;
  /** The reload being applied: the next one waits for it (see `apply`). */
  private applying: Promise<void> = Promise.resolve();

  private constructor(private readonly opts: RuntimeOptions) {
    const snap = opts.current();
    this.components = new ComponentManager(builtinComponentRegistry(), opts.logger, opts.componentRetryMs);
    this.pubsub = this.newPubSub();
    const app = snap.app;
    this.channel =
      app.port === 0
        ? null
        : app.protocol === 'grpc'
          ? new GrpcAppChannel(hostPort(app.address, app.port), opts.logger)
          : new HttpAppChannel({ address: app.address, port: app.port, logger: opts.logger });
    this.invoker = createInvoker({
      port: () => this.invocationPort(),
      appId: () => opts.current().app.id,
      logger: opts.logger,
    });
    this.services = this.buildServices();
  }

  /** Components first (each failing one is reported and retried, never fatal), then the APIs. */
  static async start(opts: RuntimeOptions): Promise<Runtime> {
    const rt = new Runtime(opts);
    try {
      await rt.begin();
    } catch (e) {
      await rt.close();
      throw e;
    }
    return rt;
  }

  private async begin(): Promise<void> {
    const snap = this.opts.current();
    await this.components.start(snap.components);
    this.pubsubSpecs = pubsubKey(snap.components);
    const app = this.channel instanceof HttpAppChannel ? this.channel : undefined;
    this.http = await startRuntimeHttpServer({ host: '127.0.0.1', port: snap.sidecar.port, healthy: this.opts.healthy, services: this.services, app });
    await this.ensureGrpc(snap);
    this.subscribe();
  }

  /**
   * The gRPC front end starts once there is something for it to serve (a component, or app ids to
   * invoke): grpc-js and the parsed runtime.proto cost ~12 MB and ~0.3 s of start-up, which a
   * sidecar used as a plain proxy should not pay. A reload that adds the first component starts it.
   */
  private async ensureGrpc(snap: Snapshot): Promise<void> {
    if (this.grpc !== null || this.http === null || this.closed) return;
    if (snap.components.length === 0 && snap.invocation.listener === '') return;
    this.grpc = await startRuntimeGrpcServer({ host: '127.0.0.1', port: snap.sidecar.grpcPort, services: this.services });
  }

  /** What both front ends are given; `pubsub` follows the runtime's current pub/sub layer across reloads. */
  private buildServices(): RuntimeServices {
    const pubsub: PubSubService = {
      publish: (call) => this.pubsub.publish(call),
      subscriptions: () => this.pubsub.subscriptions(),
    };
    return { appId: () => this.opts.current().app.id, components: this.components, pubsub, invoker: this.invoker, logger: this.opts.logger };
  }

  private newPubSub(): PubSubRuntime {
    const metrics = this.opts.registry ? pubsubMetrics(this.opts.registry) : undefined;
    return new PubSubRuntime({ pubsubs: this.components.view<PubSub>('pubsub'), appId: () => this.opts.current().app.id, logger: this.opts.logger, metrics });
  }

  /** The app's subscriptions, asked for in the background (the app often starts after the sidecar). */
  private subscribe(): void {
    const channel = this.channel;
    if (channel === null) return;
    const pubsub = this.pubsub;
    pubsub.start(channel).catch((e: unknown) => this.opts.logger.error({ error: (e as Error).message }, 'pub/sub subscriptions failed'));
  }

  /**
   * A new configuration: apply a changed `components:` list. Reloads are applied one at a time,
   * in order: one that overlapped a slow earlier one (a backend still connecting) would decide
   * against stale pub/sub bookkeeping, and the earlier one, finishing last, would win.
   */
  apply(snap: Snapshot): Promise<void> {
    const run = this.applying.then(() => this.applyNow(snap));
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async applyNow(snap: Snapshot): Promise<void> {
    if (this.closed) return;
    const key = pubsubKey(snap.components);
    const resubscribe = key !== this.pubsubSpecs;
    // Subscriptions end before their backends close, so no delivery races a closing client.
    if (resubscribe) await this.pubsub.close();
    await this.components.update(snap.components);
    if (resubscribe && !this.closed) {
      this.pubsubSpecs = key;
      this.pubsub = this.newPubSub();
      this.subscribe();
    }
    await this.ensureGrpc(snap).catch((e: unknown) => this.opts.logger.error({ port: snap.sidecar.grpcPort, error: (e as Error).message }, 'runtime gRPC API could not start'));
  }

  private invocationPort(): number | undefined {
    const snap = this.opts.current();
    const name = snap.invocation.listener;
    if (!name) return undefined;
    return this.opts.listenerPort(name) ?? snap.listeners.find((l) => l.name === name)?.port;
  }

  statuses(): ComponentStatus[] {
    return this.components.statuses();
  }

  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  get grpcPort(): number {
    return this.grpc?.port ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A reload in progress finishes first, so no subscription it makes outlives the runtime.
    await this.applying;
    await this.pubsub.close();
    await Promise.all([this.http?.close(), this.grpc?.close()]);
    await this.channel?.close();
    this.invoker.close();
    await this.components.close();
  }
}

function pubsubKey(specs: readonly ComponentSpec[]): string {
  return JSON.stringify(specs.filter((s) => s.type.startsWith('pubsub.')));
}

function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
